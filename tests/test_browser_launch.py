"""A launch inside an LMS frame in real Chromium, third-party cookies blocked and allowed.

The LMS page (https://127.0.0.1) frames the tool (https://localhost): a different site, as in
production. With cookies blocked the launch must still complete, through the partitioned state
cookie or through the LMS's postMessage platform storage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from lti_tool.identity.models import Instructor
from tests.browser_support import Tls, chromium, needs_chromium
from tests.conftest import Env, LiveServer
from tests.lms import TestPlatform

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return Tls(tmp_path)


@pytest.fixture
def https_env(app: Flask, tls: Tls, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    # The tool fetches the LMS's keys over HTTPS and must trust the test CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
    tool = LiveServer(app, host="localhost", ssl_context=tls.server_context())
    with TestPlatform(ssl_context=tls.server_context(), http_verify=str(tls.ca_file)) as lms:
        e = Env(app, tool, lms)
        lms.register_tool(
            e.client_id, login_url=e.login_url, redirect_uris=[tool.url + "/lti/launch"],
            jwks_url=tool.url + "/lti/jwks", target_link_uri=tool.url + "/lti/launch",
            deployment_ids=[e.deployment_id],
        )
        out = e.cli(
            "lti", "add-platform", "--issuer", lms.issuer, "--client-id", e.client_id,
            "--auth-login-url", lms.auth_url, "--token-url", lms.token_url,
            "--key-set-url", lms.jwks_url, "--deployment-id", e.deployment_id,
        )
        assert out.exit_code == 0, out.output
        lms.add_context(e.context_id, title="Spin recert")
        lms.add_user("learner-1", name="Jana Müller", locale="de-DE")
        lms.enrol(e.context_id, "learner-1")
        yield e
    tool.stop()


@pytest.mark.parametrize("storage", [False, True], ids=["cookies", "platform-storage"])
@pytest.mark.parametrize("blocked", [True, False], ids=["3p-blocked", "3p-allowed"])
def test_launch_in_the_lms_frame(https_env, tls, tmp_path, blocked, storage):
    e = https_env
    target = "post_message_forwarding" if storage else None
    plan = e.plan("learner-1", lti_storage_target=target)
    with chromium(tls, tmp_path / "profile", block_third_party_cookies=blocked) as ctx:
        page = ctx.new_page()
        page.goto(e.lms.course_url(plan))
        frame = page.frame_locator("iframe[name=tool]")
        heading = frame.locator("h1")
        heading.wait_for(timeout=20_000)
        assert "Jana Müller" in heading.inner_text()
        html_lang = frame.locator("html").get_attribute("lang")
        assert html_lang == "de"
        # Navigating inside the frame keeps the session (cookie or URL token).
        frame.locator("select[name=language]").select_option("es")
        frame.locator(".language-switcher button").click()
        frame.locator("html[lang=es]").wait_for(timeout=10_000)
        assert "Jana Müller" in frame.locator("h1").inner_text()
    assert e.count(Instructor) == 1
    if storage:
        # The state was written to the LMS's storage at login, whatever the cookies did.
        assert "lti.put_data" in _requests(e), e.lms.storage_messages


def _requests(e: Env) -> list[str]:
    return [
        str((m.get("message") or {}).get("subject"))
        for m in e.lms.storage_messages
        if m.get("direction") == "request"
    ]


def test_state_read_back_from_platform_storage_when_no_cookie_returns(
    https_env, tls, tmp_path, monkeypatch
):
    """A browser without CHIPS (Safari-like): the state cookie never comes back to the frame,
    so the launch page reads the state back from the LMS's storage before the session starts."""
    from lti_tool.lti import cookies

    def drop_state_cookie(self, response):  # type: ignore[no-untyped-def]
        return None  # no cookie at all: only platform storage can bind the state

    monkeypatch.setattr(cookies.PartitionedCookieService, "update_response", drop_state_cookie)
    e = https_env
    plan = e.plan("learner-1", lti_storage_target="post_message_forwarding")
    with chromium(tls, tmp_path / "profile", block_third_party_cookies=True) as ctx:
        page = ctx.new_page()
        page.goto(e.lms.course_url(plan))
        heading = page.frame_locator("iframe[name=tool]").locator("h1")
        heading.wait_for(timeout=20_000)
        assert "Jana Müller" in heading.inner_text()
    subjects = _requests(e)
    assert "lti.put_data" in subjects and "lti.get_data" in subjects, subjects
    assert os.environ.get("REQUESTS_CA_BUNDLE")
