"""The admin pages in real Chromium inside the LMS frame (tool and LMS on different sites, over
TLS, third-party cookies blocked), checked with axe-core at WCAG 2.2 AA in English, German and
Spanish: overview, module configuration (also with errors shown), learner progress, audit log,
the Deep Linking picker (whose response must auto-submit under the tool's CSP), and the
operator's sign-in and platform administration page.

Reuses the browser fixtures of tests/browser (TLS, Chromium profile, axe-core from npm).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from tests.admin_helpers import use_course
from tests.browser.conftest import add_learner, chromium, run_axe
from tests.lms import claims as C

pytestmark = [pytest.mark.browser]

TEACHERS = {
    "en": ("teacher-en", "Tina Teacher", "en-US"),
    "de": ("teacher-de", "Jörg Lehrer", "de-DE"),
    "es": ("teacher-es", "Lucía Profesora", "es-ES"),
}
PASSWORD = "operator password for tests"


class Admin:
    def __init__(self, page: Any, axe: str, lang: str) -> None:
        self.page, self.axe_js, self.lang = page, axe, lang
        self.violations: dict[str, list[Any]] = {}

    @property
    def frame(self) -> Any:
        frame = self.page.frame(name="tool")
        assert frame is not None
        return frame

    def wait_for(self, part: str, frame: Any = None) -> Any:
        deadline = time.monotonic() + 20
        while True:
            frame = frame or self.frame
            if part in frame.url:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"at {frame.url}, expected *{part}*")
            self.page.wait_for_timeout(50)
            frame = None
        frame.wait_for_load_state("domcontentloaded")
        return frame

    def go(self, selector: str, part: str) -> Any:
        frame = self.frame
        with frame.expect_navigation():
            frame.click(selector)
        return self.wait_for(part)

    def axe(self, name: str, frame: Any = None) -> None:
        frame = frame or self.frame
        assert frame.evaluate("() => document.documentElement.lang") == self.lang, name
        self.violations[name] = run_axe(frame, self.axe_js)


@pytest.mark.parametrize("lang", ["en", "de", "es"])
def test_admin_pages_are_accessible_in_every_language(
    tls_env, tls, playwright_instance, axe_source, tmp_path: Path, lang: str
):
    env = tls_env
    course = use_course(env.app)
    env.app.config["OPERATOR_PASSWORD_HASH"] = generate_password_hash(PASSWORD)
    user, name, locale = TEACHERS[lang]
    env.lms.add_user(user, name=name, email=f"{user}@example.org", locale=locale)
    env.lms.enrol(env.context_id, user, roles=[C.ROLE_INSTRUCTOR])
    add_learner(env.lms, "learner-" + lang, "Ana García", locale)
    plan = env.lms.prepare_launch(env.client_id, deployment_id=env.deployment_id, user_id=user,
                                  context_id=env.context_id, resource_link_id="rl-1")
    ctx = chromium(playwright_instance, tmp_path, tls, third_party_cookies=False)
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.goto(env.lms.course_url(plan))
        a = Admin(page, axe_source, lang)
        a.wait_for("/course/")
        a.go("a.admin-link", "/admin/")
        a.axe("overview")
        a.go("a[href*='/admin/modules']", "/admin/modules")
        a.axe("modules")
        # An invalid configuration: the page shows its errors (and must stay accessible).
        a.frame.uncheck("#offered-basics")
        a.frame.uncheck("#required-basics") if a.frame.is_checked("#required-basics") else None
        with a.frame.expect_navigation():
            a.frame.click("form[action*='/admin/modules'] button[type=submit]")
        a.wait_for("/admin/modules")
        assert a.frame.locator("[role=alert]").count() == 1
        a.axe("modules with errors")
        a.frame.check("#offered-basics")
        a.frame.fill("#pass_mark_percent", "85")
        with a.frame.expect_navigation():
            a.frame.click("form[action*='/admin/modules'] button[type=submit]")
        a.wait_for("done=saved")
        a.axe("modules saved")
        a.go("a[href*='/admin/learners']", "/admin/learners")
        assert "Ana García" in a.frame.content()
        a.axe("learners")
        a.go("a[href*='/admin/audit']", "/admin/audit")
        assert name in a.frame.content()
        a.axe("audit log")

        # Content selection: the picker, then the response that submits itself to the LMS.
        dl = env.lms.prepare_launch(env.client_id, deployment_id=env.deployment_id,
                                    user_id=user, context_id=env.context_id,
                                    message_type=C.DEEP_LINKING_REQUEST)
        page.goto(env.lms.course_url(dl))
        a.wait_for("/deep-link/")
        a.axe("deep linking picker")
        a.frame.check("#item-course")
        a.frame.check("#item-practice")
        a.frame.click("button[value=place]")
        deadline = time.monotonic() + 20
        while not env.lms.deep_link_responses and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert env.lms.deep_link_errors == []
        titles = [i["title"] for i in env.lms.deep_link_responses[-1].content_items]
        assert titles[0] == course.title[lang] or titles[0] == course.title["en"]
        assert len(titles) == 2

        # The operator's pages, top-level (they refuse to be framed).
        op = ctx.new_page()
        op.set_extra_http_headers({"Accept-Language": locale})
        op.goto(env.tool.url + "/operator/login")
        opa = Admin(op, axe_source, lang)
        opa.axe("operator sign-in", op.main_frame)
        op.fill("#password", "wrong")
        with op.expect_navigation():
            op.click("form.login button[type=submit]")
        opa.axe("operator sign-in refused", op.main_frame)
        op.fill("#password", PASSWORD)
        with op.expect_navigation():
            op.click("form.login button[type=submit]")
        assert op.url.endswith("/operator/")
        assert env.lms.issuer in op.content()
        opa.axe("operator dashboard", op.main_frame)
        a.violations.update(opa.violations)
    finally:
        ctx.close()
    bad = {page: v for page, v in a.violations.items() if v}
    assert not bad, bad
    assert len(a.violations) == 10
