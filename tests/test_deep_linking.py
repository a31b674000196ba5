"""Deep Linking 2.0 end to end: the strict test LMS verifies the response JWT (signature with the
tool's JWKS, RS256, kid, iss/aud/azp, exp/iat, nonce, message type, version, deployment_id,
data echoed, accept_types/accept_multiple/accept_lineitem), then launches what was placed.

1EdTech certification §6.2: the response is present, well formed, signed, and carries the
values the request sent.
"""

from __future__ import annotations

import jwt
import pytest
import requests

from lti_tool.admin import AuditEntry, CourseConfig
from tests.admin_helpers import Form, form, forms, query, use_course
from tests.conftest import landed_url
from tests.lms import claims as C

TAG = "spin-cecs"


@pytest.fixture
def course(env):  # type: ignore[no-untyped-def]
    return use_course(env.app)


def dl_launch(env, user="teacher-1", browser=None, **settings):  # type: ignore[no-untyped-def]
    b = browser or env.browser()
    resp = env.launch(user, browser=b, message_type=C.DEEP_LINKING_REQUEST,
                      deep_linking_settings=settings or None)
    return b, resp


def picker_form(resp: requests.Response) -> Form:
    return form(resp, "/deep-link/")


def place(b, resp, items, language=None, action="place"):  # type: ignore[no-untyped-def]
    f = picker_form(resp)
    data = f.data(item=items, action=action)
    if language:
        data["language"] = language
    return b.post(f.action, data)


def send_to_lms(b, answer: requests.Response) -> requests.Response:  # type: ignore[no-untyped-def]
    f = form(answer, "/deep_link/return")
    assert [name for name, _ in f.fields] == ["JWT"], "only the JWT goes to the LMS"
    return b.post(f.action, f.data())


def test_picker_lists_the_course_and_every_offered_module_for_admins(env, course):
    _, resp = dl_launch(env)
    assert resp.status_code == 200, resp.text[:500]
    assert "/deep-link/" in resp.url
    f = picker_form(resp)
    assert f.checkboxes.keys() == {"item"}
    values = [m for m in ("course", "basics", "practice", "extra") if f'value="{m}"' in resp.text]
    assert values == ["course", "basics", "practice", "extra"]
    assert 'type="checkbox"' in resp.text  # accept_multiple: several at once


def test_whole_course_and_a_module_are_placed_graded_and_signed(env, course):
    b, resp = dl_launch(env)
    answer = place(b, resp, ["course", "basics"])
    assert answer.status_code == 200, answer.text[:500]
    assert "deep-link-return" in answer.text and "deep_link_return.js" in answer.text
    done = send_to_lms(b, answer)
    assert done.status_code == 200, done.text  # the LMS verified everything strictly
    assert env.lms.deep_link_errors == []
    record = env.lms.deep_link_responses[-1]
    whole, basics = record.content_items
    assert whole["type"] == basics["type"] == "ltiResourceLink"
    assert whole["title"] == course.title["en"]
    assert whole["text"]
    assert "custom" not in whole
    assert whole["lineItem"] == {
        "scoreMaximum": 14, "label": f"{course.title['en']} – SPIN® CECs", "tag": TAG,
        "resourceId": "spin-recertification",
    }
    assert basics["title"] == "Module 1: " + course.modules[0].title["en"]
    assert basics["custom"] == {"module": "basics"}
    assert "8" in basics["text"]
    assert basics["lineItem"]["scoreMaximum"] == 8
    assert basics["lineItem"]["tag"] == TAG and basics["lineItem"]["resourceId"] == "basics"
    assert basics["url"] == env.tool.url + "/lti/launch"
    # The platform made a graded column for each placement (Blackboard needs exactly this).
    assert [li.score_maximum for li in record.created_lineitems] == [14, 8]
    # The signed message itself.
    token = jwt.get_unverified_header(_raw_jwt(answer))
    assert token["alg"] == "RS256" and token["kid"]
    claims = record.claims
    assert claims["iss"] == env.client_id
    assert claims["aud"] in (env.lms.issuer, [env.lms.issuer])
    assert claims[C.DEPLOYMENT_ID] == env.deployment_id
    assert claims[C.MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    # Audit: who placed what.
    entries = query(env.app, lambda s: s.query(AuditEntry).filter_by(action="deep_link").all())
    assert [e.changes["placed"] for e in entries] == [["course", "basics"]]
    assert "Tina Teacher" in entries[0].actor


def _raw_jwt(answer: requests.Response) -> str:
    return dict(form(answer, "/deep_link/return").fields)["JWT"]


def test_the_data_of_the_request_is_echoed_exactly(env, course):
    b, resp = dl_launch(env, data="opaque:é/&=1")
    done = send_to_lms(b, place(b, resp, ["practice"]))
    assert done.status_code == 200, done.text
    assert env.lms.deep_link_responses[-1].claims[C.DL_DATA] == "opaque:é/&=1"


def test_no_data_claim_when_the_request_had_none(env, course):
    b, resp = dl_launch(env, data=None)
    done = send_to_lms(b, place(b, resp, ["practice"]))
    assert done.status_code == 200, done.text
    assert C.DL_DATA not in env.lms.deep_link_responses[-1].claims


def test_a_placed_module_opens_that_module_directly(env, course):
    b, resp = dl_launch(env)
    send_to_lms(b, place(b, resp, ["course", "practice"]))
    whole_link, module_link = env.lms.deep_link_responses[-1].created_links
    learner = env.launch("learner-1", resource_link_id=module_link.id)
    assert learner.status_code == 200, learner.text[:500]
    assert "/course/module/practice" in landed_url(learner)
    learner = env.launch("learner-2", resource_link_id=whole_link.id)
    assert learner.status_code == 200
    assert "/course/module/" not in landed_url(learner) and "/course/" in landed_url(learner)


def test_accept_multiple_false_offers_one_choice_and_refuses_two(env, course):
    b, resp = dl_launch(env, accept_multiple=False)
    assert 'type="radio"' in resp.text and 'type="checkbox" id="item-' not in resp.text
    refused = place(b, resp, ["course", "basics"])
    assert refused.status_code == 422
    assert env.lms.deep_link_responses == []
    done = send_to_lms(b, place(b, refused, ["basics"]))
    assert done.status_code == 200, done.text
    assert len(env.lms.deep_link_responses[-1].content_items) == 1


def test_nothing_chosen_is_refused_with_a_message(env, course):
    b, resp = dl_launch(env)
    refused = place(b, resp, [])
    assert refused.status_code == 422
    assert 'id="error-item"' in refused.text


def test_cancel_returns_an_empty_selection(env, course):
    b, resp = dl_launch(env)
    done = send_to_lms(b, place(b, resp, [], action="cancel"))
    assert done.status_code == 200, done.text
    record = env.lms.deep_link_responses[-1]
    assert record.content_items == []
    assert record.msg


def test_only_accepted_types_are_returned(env, course):
    # A request must accept ltiResourceLink (the launch refuses one that does not, with
    # pylti1p3's validator); whatever else it accepts, only resource links come back.
    b, resp = dl_launch(env, accept_types=["link", "html", "ltiResourceLink"])
    done = send_to_lms(b, place(b, resp, ["course", "extra"]))
    assert done.status_code == 200, done.text
    items = env.lms.deep_link_responses[-1].content_items
    assert [i["type"] for i in items] == ["ltiResourceLink", "ltiResourceLink"]


def test_no_line_item_when_the_platform_says_it_ignores_them(env, course):
    b, resp = dl_launch(env, accept_lineitem=False)
    done = send_to_lms(b, place(b, resp, ["basics"]))
    assert done.status_code == 200, done.text
    assert "lineItem" not in env.lms.deep_link_responses[-1].content_items[0]


def test_titles_and_labels_are_in_the_chosen_course_language(env, course):
    b, resp = dl_launch(env)
    done = send_to_lms(b, place(b, resp, ["course", "practice"], language="de"))
    assert done.status_code == 200, done.text
    whole, practice = env.lms.deep_link_responses[-1].content_items
    assert whole["title"] == course.title["de"]
    assert practice["title"].endswith(course.modules[1].title["de"])
    assert practice["lineItem"]["label"].startswith(practice["title"])


def test_the_course_language_setting_is_the_default(env, course):
    _, resp = dl_launch(env)
    assert 'value="en" lang="en" selected' in resp.text
    query(env.app, lambda s: _set_config(s, course_language="es"))
    _, resp = dl_launch(env)
    assert 'value="es" lang="es" selected' in resp.text


def _set_config(s, **values):  # type: ignore[no-untyped-def]
    from lti_tool.identity.models import LmsContext

    ctx = s.query(LmsContext).one()
    row = CourseConfig(
        context_pk=ctx.id, course_id="fixture-course", module_order=["practice", "basics", "extra"],
        offered=["practice", "basics"], required=["practice", "basics"], pass_mark_percent=80,
        cooldown_seconds=60, languages=["en", "de", "es"], course_language="en",
        allow_assistants=False, version=1,
    )
    for k, v in values.items():
        setattr(row, k, v)
    s.add(row)
    s.commit()


def test_only_offered_modules_in_the_configured_order(env, course):
    env.launch("teacher-1")  # creates the context
    query(env.app, _set_config)
    b, resp = dl_launch(env)
    f = picker_form(resp)
    assert 'value="extra"' not in resp.text
    assert resp.text.index('value="practice"') < resp.text.index('value="basics"')
    refused = b.post(f.action, f.data(item=["extra"], action="place"))
    assert refused.status_code == 422  # not offered: not placeable
    done = send_to_lms(b, place(b, resp, ["practice"]))
    assert env.lms.deep_link_responses[-1].content_items[0]["title"].startswith("Module 1: ")
    assert done.status_code == 200


def test_a_request_is_answered_once(env, course):
    b, resp = dl_launch(env)
    f = picker_form(resp)
    first = b.post(f.action, f.data(item=["basics"], action="place"))
    assert first.status_code == 200
    again = b.post(f.action, f.data(item=["basics"], action="place"))
    assert again.status_code == 409


def test_learners_cannot_deep_link(env, course):
    _, resp = dl_launch(env, user="learner-1")
    assert resp.status_code == 403
    assert "You do not have access to this page" in resp.text


def test_the_picker_needs_a_deep_linking_launch(env, course):
    b = env.browser()
    env.launch("teacher-1", browser=b)  # an ordinary resource link launch
    resp = b.get(env.tool.url + "/deep-link/")
    assert resp.status_code == 400
    assert forms(resp) == [] or all("/deep-link/" not in f.action for f in forms(resp))
