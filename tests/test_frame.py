"""Inside the LMS frame: third-party cookies blocked, platform storage, proxies, dev over http."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask

from lti_tool.identity.models import Instructor
from tests.conftest import Env, LiveServer, connect
from tests.lms import TestPlatform


@pytest.fixture
def cross_site_env(app: Flask, lms: TestPlatform) -> Iterator[Env]:
    """The tool on another site (localhost) than the LMS (127.0.0.1), as in real LMS frames."""
    server = LiveServer(app, host="localhost")
    e = Env(app, server, lms)
    connect(app, server, lms, e.client_id, (e.deployment_id,))
    lms.add_context(e.context_id)
    lms.add_user("learner-1", name="Ana García", locale="es-ES")
    lms.enrol(e.context_id, "learner-1")
    yield e
    server.stop()


def _storage_redirect(resp) -> str | None:  # type: ignore[no-untyped-def]
    """Where lti_storage.js navigates after writing the state (what a real browser would do)."""
    import html

    m = re.search(r'data-next="([^"]+)"', resp.text)
    return html.unescape(m.group(1)) if m else None


def framed_browser(e: Env):  # type: ignore[no-untyped-def]
    return e.browser(framed=True, third_party_cookies=False, js_redirect=_storage_redirect)


def _storage_page_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="(pending|state)" value="([^"]*)"', html)) | {
        "data_state": re.search(r'data-state="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    }


def test_platform_storage_completes_a_launch_without_cookies(cross_site_env):
    e = cross_site_env
    b = framed_browser(e)
    plan = e.plan("learner-1", lti_storage_target="post_message_forwarding")
    login = b.start_login(plan, login_url=e.login_url)
    # The login answers with a page that writes the state to the LMS's storage, then goes on.
    assert login.status_code == 200 and 'data-mode="put"' in login.text
    assert 'data-target="post_message_forwarding"' in login.text
    auth = b.follow_auth(login)
    assert auth.status_code == 200
    resp = b.submit_form()
    assert resp.status_code == 200
    assert 'data-mode="get"' in resp.text, resp.text[:500]
    fields = _storage_page_fields(resp.text)
    assert env_count(e) == 0  # no session and no profile before the state is confirmed
    # What lti_storage.js does after lti.get_data answers with the stored value:
    done = b.post(
        e.tool.url + "/lti/launch/verify",
        data={"pending": fields["pending"], "state": fields["data_state"]},
    )
    assert done.status_code == 200, done.text[:300]
    assert "Ana García" in done.text and "lt=" in done.text
    assert env_count(e) == 1
    # Following a link works without any cookie: the session rides in the URL.
    link = re.search(r'action="([^"]*language[^"]*)"', done.text)
    assert link is not None
    # The pending launch is single-use.
    again = b.post(
        e.tool.url + "/lti/launch/verify",
        data={"pending": fields["pending"], "state": fields["data_state"]},
    )
    assert again.status_code == 400


def env_count(e: Env) -> int:
    return e.count(Instructor)


def test_platform_storage_with_a_wrong_state_is_refused(cross_site_env):
    e = cross_site_env
    b = framed_browser(e)
    plan = e.plan("learner-1", lti_storage_target="post_message_forwarding")
    b.follow_auth(b.start_login(plan, login_url=e.login_url))
    resp = b.submit_form()
    fields = _storage_page_fields(resp.text)
    bad = b.post(
        e.tool.url + "/lti/launch/verify",
        data={"pending": fields["pending"], "state": "state-something-else"},
    )
    assert bad.status_code == 400
    assert env_count(e) == 0


def test_blocked_cookies_without_platform_storage_offer_a_new_window(cross_site_env):
    e = cross_site_env
    b = framed_browser(e)
    resp = e.launch("learner-1", browser=b)
    assert resp.status_code == 403
    assert "lti1p3_new_window=1" in resp.text
    # The Spanish learner gets the page in Spanish even though no session exists.
    assert '<html lang="es">' in resp.text


def test_session_token_in_urls_when_cookies_do_not_come_back(cross_site_env):
    e = cross_site_env
    b = framed_browser(e)
    plan = e.plan("learner-1", lti_storage_target="post_message_forwarding")
    b.follow_auth(b.start_login(plan, login_url=e.login_url))
    fields = _storage_page_fields(b.submit_form().text)
    home = b.post(
        e.tool.url + "/lti/launch/verify",
        data={"pending": fields["pending"], "state": fields["data_state"]},
    )
    token = re.search(r'name="lt" value="([^"]+)"', home.text)
    assert token, "forms carry the session token"
    # A page fetched with only the token (no cookie at all) is the learner's page.
    fresh = e.browser()
    page = fresh.get(e.tool.url + "/course/?lt=" + token.group(1))
    assert page.status_code == 200 and "Ana García" in page.text
    tampered = fresh.get(e.tool.url + "/course/?lt=" + token.group(1)[:-2] + "xx")
    assert tampered.status_code == 401


def test_forwarded_headers_are_honoured_only_from_trusted_proxies(tmp_path):
    from tests.conftest import _config

    cfg = _config(tmp_path, f"sqlite:///{tmp_path}/p.sqlite3")
    from lti_tool import create_app

    trusting = create_app({**cfg, "TRUSTED_PROXY_HOPS": 1}).test_client()
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tool.example.org"}
    conf = trusting.get("/lti/config.json", headers=headers).get_json()
    assert conf["oidc_initiation_url"] == "https://tool.example.org/lti/login"
    naive = create_app({**cfg, "TRUSTED_PROXY_HOPS": 0}).test_client()
    conf = naive.get("/lti/config.json", headers=headers).get_json()
    assert conf["oidc_initiation_url"] == "http://localhost/lti/login"


def test_cookies_are_partitioned_over_https_and_lax_over_http(env):
    b = env.browser()
    login = b.start_login(env.plan("learner-1"), login_url=env.login_url)
    cookie = login.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "Secure" not in cookie
    client = env.app.test_client()
    resp = client.get(
        "/lti/login?" + "&".join(f"{k}={v}" for k, v in env.plan("learner-1").login_params.items()),
        base_url=env.tool.url.replace("http://", "https://"),
    )
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie


def test_verify_compares_a_hostile_state_safely(cross_site_env):
    """Attacker-controlled, non-ASCII state text against a real pending launch: a clean 400."""
    e = cross_site_env
    b = framed_browser(e)
    plan = e.plan("learner-1", lti_storage_target="post_message_forwarding")
    b.follow_auth(b.start_login(plan, login_url=e.login_url))
    fields = _storage_page_fields(b.submit_form().text)
    resp = b.post(e.tool.url + "/lti/launch/verify",
                  data={"pending": fields["pending"], "state": "é" * 40})
    assert resp.status_code == 400
    assert env_count(e) == 0
