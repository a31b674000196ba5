"""Real OIDC launches from the strict test LMS: every rejection case and every valid variant.

1EdTech LTI Advantage certification §6.1.1 (bad payloads) and §6.1.2/§6.1.3 (valid launches),
plus the tool's own rules: single-use nonce, state bound to the login, known active deployment.
"""

from __future__ import annotations

import re

import pytest

from lti_tool.identity.models import Instructor, LmsContext, Membership, ResourceLink
from lti_tool.lti.models import Deployment, UsedNonce
from tests.conftest import landed_url
from tests.lms import Tamper
from tests.lms import claims as C


def refusal_code(resp) -> str:  # type: ignore[no-untyped-def]
    m = re.search(r"<code>([a-z_]+)</code>", resp.text)
    return m.group(1) if m else ""


def test_valid_launch_lands_on_course_home_and_records_the_instructor(env):
    resp = env.launch(
        "learner-1", custom={"certification_date": "2025-03-14", "spin_member": "true"}
    )
    assert resp.status_code == 200, resp.text[:500]
    assert "/course/" in landed_url(resp)
    assert "Ana García" in resp.text
    assert '<html lang="en">' in resp.text
    with env.app.app_context():
        from lti_tool import db

        with db.standalone_session() as s:
            inst = s.query(Instructor).one()
            assert (inst.sub, inst.email, inst.given_name) == (
                "learner-1",
                "ana@example.org",
                "Ana",
            )
            assert inst.certification_date.isoformat() == "2025-03-14"
            assert inst.spin_member is True
            assert inst.issuer == env.lms.issuer
            link = s.query(ResourceLink).one()
            assert link.resource_link_id == "rl-1"
            assert link.ags_endpoint and "lineitems" in link.ags_endpoint
            assert link.nrps_url
            ctx = s.query(LmsContext).one()
            assert ctx.title == "Indoor Cycling Recertification"
            assert s.query(Membership).one().is_admin is False
    # The tool sent a proper OIDC authentication request (the LMS verified it strictly).
    req = env.lms.auth_requests[-1]
    assert req.params["redirect_uri"] == env.tool.url + "/lti/launch"
    assert req.params["response_mode"] == "form_post"


def test_the_launch_answers_with_the_course_page_which_gives_itself_its_own_address(env):
    """One round trip fewer per launch: the launch response is the course home itself. Its
    address (script data-url) is the page's GET URL, so reloading the frame shows the page
    again instead of re-posting the spent id_token (which would be a replay)."""
    b = env.browser()
    resp = env.launch("learner-1", browser=b)
    assert resp.status_code == 200 and resp.url.endswith("/lti/launch")
    address = landed_url(resp)
    assert address != resp.url and "/course/?lt=" in address
    again = b.get(address)
    assert again.status_code == 200
    def main(page: str) -> str:  # the page's content, without session tokens
        content = page[page.index("<main"):page.index("</main>")]
        return re.sub(r'(lt=|name="csrf_token" value=")[^"&]+', "", content)

    assert main(again.text) == main(resp.text)
    assert "page_url.js" not in again.text  # a GET page is at its own address already
    # The language switcher returns to the page's address, not to the launch URL.
    assert 'name="next" value="/course/' in resp.text
    # Re-posting the launch is refused as a replay, and changes nothing.
    replay = b.submit_form()
    assert replay.status_code in (400, 403) and refusal_code(replay) == "replayed"


def test_login_initiation_by_post_works_too(env):
    resp = env.launch("learner-1", method="POST")
    assert resp.status_code == 200
    assert "Ana García" in resp.text


@pytest.mark.parametrize("case", sorted(Tamper.bad_payloads()))
def test_bad_payload_is_refused_with_a_clear_page_and_nothing_written(env, case):
    tamper = Tamper.bad_payloads()[case]
    resp = env.launch("learner-1", tamper=tamper)
    assert 400 <= resp.status_code < 500, (case, resp.status_code, resp.text[:300])
    assert "The course could not be opened" in resp.text
    assert refusal_code(resp) in {"bad_token", "expired", "bad_state", "unknown_platform"}, case
    for model in (Instructor, ResourceLink, LmsContext, Membership):
        assert env.count(model) == 0, (case, model)


@pytest.mark.parametrize("learner", [True, False], ids=["learner", "instructor"])
@pytest.mark.parametrize("case", sorted(Tamper.valid_variants()))
def test_valid_variant_is_accepted(env, case, learner):
    user = "learner-1" if learner else "teacher-1"
    tamper = Tamper.valid_variants(learner)[case]
    resp = env.launch(user, tamper=tamper)
    assert resp.status_code == 200, (case, resp.status_code, resp.text[:400])
    assert "/course/" in landed_url(resp)
    assert env.count(Instructor) == 1
    if tamper.no_context:
        assert env.count(LmsContext) == 0


def test_instructor_role_makes_a_course_admin(env):
    resp = env.launch("teacher-1")
    assert resp.status_code == 200
    with env.app.app_context():
        from lti_tool import db

        with db.standalone_session() as s:
            assert s.query(Membership).one().is_admin is True


def test_replayed_id_token_is_refused(env):
    b = env.browser()
    assert env.launch("learner-1", browser=b).status_code == 200
    replay = b.submit_form()  # the same id_token and state, posted again
    assert replay.status_code in (400, 403)
    assert refusal_code(replay) == "replayed"
    assert env.count(UsedNonce) == 1


def test_forged_state_is_refused(env):
    b = env.browser()
    plan = env.plan("learner-1")
    b.follow_auth(b.start_login(plan, login_url=env.login_url))
    resp = b.submit_form(override={"state": "state-forged-by-an-attacker"})
    assert resp.status_code == 400
    assert refusal_code(resp) == "bad_state"
    assert env.count(Instructor) == 0


def test_id_token_from_another_login_is_refused(env):
    """An id_token issued for one login cannot complete another (nonce bound to state)."""
    b1, b2 = env.browser(), env.browser()
    b1.follow_auth(b1.start_login(env.plan("learner-1"), login_url=env.login_url))
    b2.follow_auth(b2.start_login(env.plan("learner-2"), login_url=env.login_url))
    resp = b2.submit_form(override={"id_token": b1.id_token or ""})
    assert resp.status_code == 400
    assert refusal_code(resp) == "bad_state"
    assert env.count(Instructor) == 0


def test_launch_without_the_state_cookie_offers_a_new_window(env):
    b = env.browser()
    b.follow_auth(b.start_login(env.plan("learner-1"), login_url=env.login_url))
    other = env.browser()  # a browser that never saw the login: no state cookie
    resp = other.submit_form(b.last_form)
    assert resp.status_code == 403
    assert refusal_code(resp) == "cookies_blocked"
    assert "lti1p3_new_window=1" in resp.text
    assert env.count(Instructor) == 0


def test_unknown_deployment_is_recorded_inactive_until_activated(env):
    resp = env.launch("learner-1", deployment_id="dep-new")
    assert resp.status_code == 403
    assert refusal_code(resp) == "unknown_deployment"
    assert "activated" in resp.text
    with env.app.app_context():
        from lti_tool import db

        with db.standalone_session() as s:
            dep = s.query(Deployment).filter_by(deployment_id="dep-new").one()
            assert dep.is_active is False
    listing = env.cli("lti", "platforms")
    assert "dep-new: INACTIVE" in listing.output
    result = env.cli(
        "lti",
        "activate",
        "--issuer",
        env.lms.issuer,
        "--client-id",
        env.client_id,
        "--deployment-id",
        "dep-new",
    )
    assert result.exit_code == 0, result.output
    assert env.launch("learner-1", deployment_id="dep-new").status_code == 200


def test_deactivated_deployment_and_registration_are_refused(env):
    assert env.launch("learner-1").status_code == 200
    env.cli("lti", "deactivate", "--issuer", env.lms.issuer, "--deployment-id", "dep-1")
    resp = env.launch("learner-1")
    assert resp.status_code == 403 and refusal_code(resp) == "inactive_deployment"
    env.cli("lti", "activate", "--issuer", env.lms.issuer, "--deployment-id", "dep-1")
    env.cli("lti", "deactivate", "--issuer", env.lms.issuer)
    resp = env.launch("learner-1")
    assert resp.status_code == 403 and refusal_code(resp) == "inactive_platform"


def test_unknown_issuer_at_login_gets_a_clear_page(env):
    b = env.browser()
    from urllib.parse import urlencode

    query = urlencode(
        {
            "iss": "https://unknown.example.org",
            "login_hint": "x",
            "target_link_uri": env.tool.url + "/lti/launch",
        }
    )
    resp = b.get(env.login_url + "?" + query)
    assert resp.status_code == 400
    assert refusal_code(resp) == "unknown_platform"
    assert "not registered" in resp.text


def test_target_link_uri_on_another_site_is_refused(env):
    resp = env.launch("learner-1", target_link_uri="https://evil.example.org/phish")
    assert resp.status_code == 400
    assert refusal_code(resp) == "bad_target"


def test_platform_key_rotation_is_followed_by_refetching_the_key_set(env):
    assert env.launch("learner-1").status_code == 200
    fetched = env.lms.jwks_requests
    env.lms.rotate_key(retire_old=True)
    resp = env.launch("learner-1")
    assert resp.status_code == 200, resp.text[:300]
    assert env.lms.jwks_requests == fetched + 1


def test_platform_keys_are_cached_between_launches(env):
    env.launch("learner-1")
    fetched = env.lms.jwks_requests
    env.launch("learner-2")
    env.launch("learner-1")
    assert env.lms.jwks_requests == fetched


def test_session_is_rebound_on_every_launch(env):
    b = env.browser()
    first = env.launch("learner-1", browser=b)
    assert "Ana García" in first.text
    second = env.launch("learner-2", browser=b)
    assert "Ben Becker" in second.text and "Ana García" not in second.text


def test_profile_is_updated_from_each_launch_and_kept_without_pii(env):
    env.launch("learner-1")
    env.lms.users["learner-1"].email = "ana.garcia@example.org"
    env.launch("learner-1")
    env.launch("learner-1", tamper=Tamper(no_pii=True))
    with env.app.app_context():
        from lti_tool import db

        with db.standalone_session() as s:
            inst = s.query(Instructor).one()
            assert inst.email == "ana.garcia@example.org"
            assert inst.name == "Ana García"


def test_deep_linking_request_goes_to_the_module_picker_for_admins_only(env):
    resp = env.launch("teacher-1", message_type=C.DEEP_LINKING_REQUEST)
    assert resp.status_code == 200, resp.text[:300]
    assert "/deep-link/" in resp.url
    resp = env.launch("learner-1", message_type=C.DEEP_LINKING_REQUEST)
    assert resp.status_code == 403


def test_course_pages_need_a_launch(env):
    b = env.browser()
    resp = b.get(env.tool.url + "/course/")
    assert resp.status_code == 401
    assert "open the activity again" in resp.text
