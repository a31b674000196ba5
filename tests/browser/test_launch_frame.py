"""A launch inside an LMS frame in real Chromium, third-party cookies blocked and allowed.

The LMS page (https://127.0.0.1) frames the tool (https://localhost): a different site, as in
production. With cookies blocked the launch must still complete, through the partitioned state
cookie or through the LMS's postMessage platform storage.
"""

from __future__ import annotations

from typing import Any

import pytest

from lti_tool.identity.models import Instructor
from tests.browser.conftest import TlsEnv, chromium
from tests.lms import claims as C


def _plan(e: TlsEnv, storage: bool) -> Any:
    e.lms.add_user("learner-1", name="Jana Müller", locale="de-DE")
    e.lms.enrol(e.context_id, "learner-1", roles=[C.ROLE_LEARNER])
    return e.lms.prepare_launch(
        e.client_id, deployment_id=e.deployment_id, user_id="learner-1",
        context_id=e.context_id, resource_link_id="rl-1",
        lti_storage_target="post_message_forwarding" if storage else None,
    )


def _requests(e: TlsEnv) -> list[str]:
    return [
        str((m.get("message") or {}).get("subject"))
        for m in e.lms.storage_messages
        if m.get("direction") == "request"
    ]


def _instructors(e: TlsEnv) -> int:
    from lti_tool import db

    with e.app.app_context(), db.standalone_session() as s:
        return s.query(Instructor).count()


@pytest.mark.parametrize("storage", [False, True], ids=["cookies", "platform-storage"])
@pytest.mark.parametrize("blocked", [True, False], ids=["3p-blocked", "3p-allowed"])
def test_launch_in_the_lms_frame(tls_env, tls, tmp_path, playwright_instance, blocked, storage):
    e = tls_env
    plan = _plan(e, storage)
    ctx = chromium(playwright_instance, tmp_path, tls, third_party_cookies=not blocked)
    try:
        page = ctx.new_page()
        page.goto(e.lms.course_url(plan))
        frame = page.frame_locator("iframe[name=tool]")
        frame.locator("h1").wait_for(timeout=20_000)
        assert "Jana Müller" in frame.locator("h1").inner_text()
        assert frame.locator("html").get_attribute("lang") == "de"
        # Navigating inside the frame keeps the session (cookie or URL token).
        frame.locator("select[name=language]").select_option("es")
        frame.locator(".language-switcher button").click()
        frame.locator("html[lang=es]").wait_for(timeout=10_000)
        assert "Jana Müller" in frame.locator("h1").inner_text()
    finally:
        ctx.close()
    assert _instructors(e) == 1
    if storage:
        # The state was written to the LMS's storage at login, whatever the cookies did.
        assert "lti.put_data" in _requests(e), e.lms.storage_messages


def test_state_read_back_from_platform_storage_when_no_cookie_returns(
    tls_env, tls, tmp_path, playwright_instance, monkeypatch
):
    """A browser without CHIPS (Safari-like): the state cookie never comes back to the frame,
    so the launch page reads the state back from the LMS's storage before the session starts."""
    from lti_tool.lti import cookies

    def drop_state_cookie(self, response):  # type: ignore[no-untyped-def]
        return None  # no cookie at all: only platform storage can bind the state

    monkeypatch.setattr(cookies.PartitionedCookieService, "update_response", drop_state_cookie)
    e = tls_env
    plan = _plan(e, storage=True)
    ctx = chromium(playwright_instance, tmp_path, tls, third_party_cookies=False)
    try:
        page = ctx.new_page()
        page.goto(e.lms.course_url(plan))
        heading = page.frame_locator("iframe[name=tool]").locator("h1")
        heading.wait_for(timeout=20_000)
        assert "Jana Müller" in heading.inner_text()
    finally:
        ctx.close()
    subjects = _requests(e)
    assert "lti.put_data" in subjects and "lti.get_data" in subjects, subjects
