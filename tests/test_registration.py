"""LTI Dynamic Registration against the test platform's registration endpoint, and the CLI."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from lti_tool.lti.models import Deployment, Registration


def _register(env, invite: str | None = None):  # type: ignore[no-untyped-def]
    oc_url, token = env.lms.start_registration()
    b = env.browser()
    params = {"openid_configuration": oc_url, "registration_token": token}
    if invite:
        params["invite"] = invite
    page = b.get(env.tool.url + "/lti/register?" + urlencode(params))
    assert page.status_code == 200, page.text[:400]
    done = b.submit_form(page)
    return page, done


def _new_registration(env):  # type: ignore[no-untyped-def]
    with env.app.app_context():
        from lti_tool import db

        with db.standalone_session() as s:
            return s.query(Registration).filter_by(source="dynamic").one()


def test_dynamic_registration_without_invite_arrives_inactive(env):
    page, done = _register(env)
    assert "Register the course tool" in page.text
    assert done.status_code == 200, done.text[:400]
    assert "waits for the tool operator" in done.text
    assert "lti_close.js" in done.text
    record = env.lms.registrations[-1]
    assert record.ok, record.error
    sent = record.request
    assert sent["initiate_login_uri"] == env.tool.url + "/lti/login"
    assert sent["redirect_uris"] == [env.tool.url + "/lti/launch"]
    assert sent["jwks_uri"] == env.tool.url + "/lti/jwks"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in sent["scope"]
    assert "contextmembership.readonly" in sent["scope"]
    types = [
        m["type"]
        for m in sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
    ]
    assert "LtiDeepLinkingRequest" in types
    reg = _new_registration(env)
    assert reg.client_id == record.client_id
    assert reg.is_active is False
    assert reg.auth_login_url == env.lms.auth_url
    # A launch on the new registration is refused until the operator activates it.
    env.client_id = record.client_id
    env.deployment_id = record.deployment_id
    resp = env.launch("learner-1")
    assert resp.status_code == 403


def test_dynamic_registration_with_invite_is_active_and_launches(env):
    out = env.cli("lti", "invite", "--base-url", env.tool.url)
    assert out.exit_code == 0, out.output
    url = out.output.strip()
    assert url.startswith(env.tool.url + "/lti/register?invite=")
    invite = url.split("invite=", 1)[1]
    _, done = _register(env, invite)
    assert "The course tool is registered." in done.text
    record = env.lms.registrations[-1]
    reg = _new_registration(env)
    assert reg.is_active is True
    env.client_id = record.client_id
    env.deployment_id = record.deployment_id
    resp = env.launch("learner-1")
    assert resp.status_code == 200, resp.text[:300]
    # The invite is single-use: a second registration with it arrives inactive.
    _register(env, invite)
    with env.app.app_context():
        from lti_tool import db

        with db.standalone_session() as s:
            actives = [r.is_active for r in s.query(Registration).filter_by(source="dynamic")]
    assert sorted(actives) == [False, True]


def test_registration_with_a_bad_token_gets_a_clear_page(env):
    oc_url, _ = env.lms.start_registration()
    b = env.browser()
    resp = b.get(
        env.tool.url
        + "/lti/register?"
        + urlencode({"openid_configuration": oc_url, "registration_token": "not-the-token"})
    )
    assert resp.status_code == 400
    assert "registration request was not valid" in resp.text
    assert env.count(Registration) == 1  # only the CLI one from the fixture


def test_registration_refuses_non_https_configuration(env):
    b = env.browser()
    resp = b.get(
        env.tool.url
        + "/lti/register?"
        + urlencode(
            {
                "openid_configuration": "http://lms.example.org/.well-known/openid-configuration",
                "registration_token": "x",
            }
        )
    )
    assert resp.status_code == 400


def test_forged_registration_form_changes_nothing(env):
    b = env.browser()
    resp = b.post(env.tool.url + "/lti/register", data={"ticket": "forged"})
    assert resp.status_code == 400
    assert env.count(Registration) == 1


def test_jwks_publishes_rs256_signing_keys(env):
    b = env.browser()
    keys = b.get(env.tool.url + "/lti/jwks").json()["keys"]
    assert len(keys) == 1
    assert {keys[0]["alg"], keys[0]["use"], keys[0]["kty"]} == {"RS256", "sig", "RSA"}
    assert keys[0]["kid"] and "d" not in keys[0]


def test_rotate_key_publishes_new_key_and_keeps_the_old_one(env):
    b = env.browser()
    old = b.get(env.tool.url + "/lti/jwks").json()["keys"][0]["kid"]
    out = env.cli("lti", "rotate-key", "--publish-delay", "0", "--grace", "3600")
    assert out.exit_code == 0, out.output
    kids = [k["kid"] for k in b.get(env.tool.url + "/lti/jwks").json()["keys"]]
    assert old in kids and len(kids) == 2
    second = next(k for k in kids if k != old)
    # A key leaves the set once its own grace period is over: the second key retires at once
    # here, the first keeps the hour it was given.
    env.cli("lti", "rotate-key", "--publish-delay", "0", "--grace", "0")
    with env.app.app_context():
        from lti_tool.lti import keys

        keys.reset_cache()
    kids = [k["kid"] for k in b.get(env.tool.url + "/lti/jwks").json()["keys"]]
    assert second not in kids and old in kids and len(kids) == 2
    listing = env.cli("lti", "keys")
    assert listing.exit_code == 0 and len(listing.output.strip().splitlines()) == 3


def test_add_platform_from_json_and_list(env, tmp_path):
    conf = {
        "issuer": "https://canvas.instructure.com",
        "client_id": "10000000000042",
        "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "token_url": "https://sso.canvaslms.com/login/oauth2/token",
        "key_set_url": "https://sso.canvaslms.com/api/lti/security/jwks",
        "deployment_ids": ["1:abc", "2:def"],
    }
    path = tmp_path / "canvas.json"
    path.write_text(json.dumps(conf))
    out = env.cli("lti", "add-platform", "--json", str(path), "--name", "Canvas")
    assert out.exit_code == 0, out.output
    # A second client id under the same issuer (Canvas issues one per developer key).
    out = env.cli("lti", "add-platform", "--json", str(path), "--client-id", "10000000000043")
    assert out.exit_code == 0, out.output
    listing = env.cli("lti", "platforms").output
    assert listing.count("issuer=https://canvas.instructure.com") == 2
    assert "deployment 1:abc: active" in listing
    with env.app.app_context():
        from lti_tool import db

        with db.standalone_session() as s:
            assert s.query(Deployment).count() == 5
    missing = env.cli("lti", "add-platform", "--issuer", "https://x.example")
    assert missing.exit_code != 0 and "--client-id" in missing.output


def test_canvas_configuration_lists_the_tool_urls(env):
    conf = env.browser().get(env.tool.url + "/lti/config.json").json()
    assert conf["oidc_initiation_url"] == env.tool.url + "/lti/login"
    assert conf["public_jwk_url"] == env.tool.url + "/lti/jwks"
    placements = {p["placement"]: p for p in conf["extensions"][0]["settings"]["placements"]}
    assert placements["link_selection"]["message_type"] == "LtiDeepLinkingRequest"
    assert re.match(r"https?://", conf["target_link_uri"])


def test_prune_removes_old_nonces_and_expired_cache_entries(env):
    from datetime import timedelta

    from lti_tool import cache, db
    from lti_tool.db import utcnow
    from lti_tool.lti.models import UsedNonce

    assert env.launch("learner-1").status_code == 200
    with env.app.app_context():
        with db.standalone_session() as s:
            s.add(UsedNonce(nonce="old-one", used_at=utcnow() - timedelta(days=1)))
            s.commit()
        with env.app.test_request_context():
            cache.set("short-lived", 1, 1)
    import time

    time.sleep(1.2)
    out = env.cli("lti", "prune")
    assert out.exit_code == 0, out.output
    assert "Pruned 1 used nonces." in out.output
    assert env.count(UsedNonce) == 1  # the fresh one stays
