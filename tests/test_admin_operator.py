"""The operator's platform administration page: off without a configured password hash, a
CSRF-protected sign-in with a modest rate limit, registrations and deployments, activation."""

from __future__ import annotations

import time

import pytest
from werkzeug.security import generate_password_hash

from lti_tool.admin import AuditEntry
from lti_tool.lti.models import Deployment
from lti_tool.lti.session import session_token
from tests.admin_helpers import form, query, use_course

PASSWORD = "correct horse battery staple"


@pytest.fixture
def operator(env):  # type: ignore[no-untyped-def]
    use_course(env.app)
    env.app.config["OPERATOR_PASSWORD_HASH"] = generate_password_hash(PASSWORD)
    return env


def sign_in(env, password=PASSWORD):  # type: ignore[no-untyped-def]
    b = env.browser()
    page = b.get(env.tool.url + "/operator/login")
    assert page.status_code == 200
    f = form(page, "/operator/login")
    return b, b.post(f.action, f.data(password=password))


def test_off_without_a_configured_hash(env):
    b = env.browser()
    for path in ("/operator/", "/operator/login"):
        assert b.get(env.tool.url + path).status_code == 404
    assert b.post(env.tool.url + "/operator/login", {"password": ""}).status_code == 404


@pytest.mark.parametrize("value", ["", "hunter2", "correct horse battery staple"])
def test_a_plain_password_in_the_setting_does_not_switch_it_on(env, value):
    env.app.config["OPERATOR_PASSWORD_HASH"] = value
    assert env.browser().get(env.tool.url + "/operator/login").status_code == 404


def test_sign_in_lists_registrations_and_deployments(operator):
    env = operator
    _, page = sign_in(env)
    assert page.status_code == 200 and page.url.endswith("/operator/"), page.text[:300]
    assert env.lms.issuer in page.text and "tool-1" in page.text
    assert "dep-1" in page.text and "Test LMS" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    entries = query(env.app, lambda s: [e.action for e in s.query(AuditEntry).all()])
    assert entries == ["operator_login"]


def test_wrong_passwords_are_refused_and_rate_limited(operator):
    env = operator
    for _ in range(5):
        _, resp = sign_in(env, "wrong password")
        assert resp.status_code == 401
        assert "The password is not correct" in resp.text
    _, resp = sign_in(env)  # even the right one, for a while
    assert resp.status_code == 429


def test_sign_in_needs_the_form_token(operator):
    env = operator
    b = env.browser()
    b.get(env.tool.url + "/operator/login")
    resp = b.post(env.tool.url + "/operator/login", {"password": PASSWORD})
    assert resp.status_code == 400
    assert b.get(env.tool.url + "/operator/", follow_redirects=False).status_code == 303


def test_a_pending_deployment_is_activated_and_audited(operator):
    env = operator
    refused = env.launch("learner-1", deployment_id="dep-new")
    assert refused.status_code == 403  # unknown deployments arrive inactive
    b, page = sign_in(env)
    assert "Waiting for activation" in page.text and "dep-new" in page.text
    pk = query(env.app, lambda s: s.query(Deployment).filter_by(deployment_id="dep-new").one().id)
    f = form(page, f"/operator/deployments/{pk}/active")
    assert f.data()["active"] == "1"
    # Forged first: no token, nothing changes.
    forged = b.post(f.action, {"active": "1"})
    assert forged.status_code == 400
    assert not query(env.app, lambda s: s.get(Deployment, pk).is_active)
    done = b.post(f.action, f.data())
    assert done.status_code == 200 and "done=saved" in done.url
    assert query(env.app, lambda s: s.get(Deployment, pk).is_active)
    assert env.launch("learner-1", deployment_id="dep-new").status_code == 200
    entry = query(env.app, lambda s: s.query(AuditEntry).filter_by(
        action="deployment_activated").one())
    assert entry.actor == "operator" and entry.changes["deployment_id"] == "dep-new"


def test_deactivating_a_registration_stops_its_launches(operator):
    env = operator
    b, page = sign_in(env)
    f = next(f for f in _forms(page) if "/operator/registrations/" in f.action)
    assert f.data()["active"] == "0"
    assert b.post(f.action, f.data()).status_code == 200
    assert env.launch("learner-1").status_code in (400, 403)


def _forms(page):  # type: ignore[no-untyped-def]
    from tests.admin_helpers import forms

    return forms(page)


def test_the_operator_session_never_travels_in_urls(operator):
    env = operator
    token = session_token(env.app, {"op": True, "op_until": time.time() + 3600})
    b = env.browser()
    resp = b.get(env.tool.url + "/operator/?lt=" + token, follow_redirects=False)
    assert resp.status_code == 303 and "/operator/login" in resp.headers["Location"]


def test_an_lti_launch_ends_the_operator_session(operator):
    env = operator
    b, _ = sign_in(env)
    env.launch("learner-1", browser=b)
    assert b.get(env.tool.url + "/operator/", follow_redirects=False).status_code == 303


def test_sign_out(operator):
    env = operator
    b, page = sign_in(env)
    f = form(page, "/operator/logout")
    b.post(f.action, f.data())
    assert b.get(env.tool.url + "/operator/", follow_redirects=False).status_code == 303


def test_cli_makes_a_hash(env):
    result = env.app.test_cli_runner().invoke(
        args=["operator", "hash-password", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    from werkzeug.security import check_password_hash

    assert check_password_hash(result.output.strip(), PASSWORD)
    short = env.app.test_cli_runner().invoke(args=["operator", "hash-password", "--password", "x"])
    assert short.exit_code != 0
