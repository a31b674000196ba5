"""End to end in a real browser, inside an LMS frame on another site, in en, de and es:
launch, read every lesson, fail a quiz, pass it, finish every module, see all CECs and the
eligible-to-renew state, download the certificate PDF, open the verification page — with
axe-core (WCAG 2.2 AA) on every page type and third-party cookies blocked or allowed."""

from __future__ import annotations

import io
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lti_tool.content import Course, get_course
from tests.browser.conftest import add_learner, chromium, run_axe

pytestmark = pytest.mark.browser

# The real course by default; E2E_COURSE_DIR points at another one (e.g. the test fixture).
COURSE_DIR = os.environ.get("E2E_COURSE_DIR")

LEARNERS = {
    "en": ("learner-en", "Ana García", "en-US"),
    "de": ("learner-de", "Jürgen Müller-Lüdenscheidt", "de-DE"),
    "es": ("learner-es", "José Núñez Ibáñez", "es-ES"),
}


def load_course(app: Any) -> Course:
    if COURSE_DIR:
        app.config["COURSE_CONTENT_DIR"] = COURSE_DIR
    app.config["QUIZ_COOLDOWN_SECONDS"] = 0
    app.extensions.pop("lti_tool.course", None)
    with app.app_context():
        return get_course()


class Journey:
    """One learner in one browser; every page type is checked with axe once."""

    def __init__(self, page: Any, course: Course, axe_source: str, lang: str) -> None:
        self.page = page
        self.course = course
        self.axe_source = axe_source
        self.lang = lang
        self.checked: dict[str, list[Any]] = {}

    @property
    def frame(self) -> Any:
        frame = self.page.frame(name="tool")
        assert frame is not None
        return frame

    def wait_for(self, path_part: str, frame: Any = None) -> Any:
        frame = frame or self.frame
        deadline = time.monotonic() + 20
        while path_part not in frame.url:
            if time.monotonic() > deadline:
                raise AssertionError(f"tool frame at {frame.url}, expected *{path_part}*")
            self.page.wait_for_timeout(50)
        frame.wait_for_load_state("domcontentloaded")
        return frame

    def click_and_wait(self, selector: str, path_part: str) -> Any:
        frame = self.frame
        with frame.expect_navigation():
            frame.click(selector)
        return self.wait_for(path_part)

    def axe(self, page_type: str, frame: Any = None) -> None:
        if page_type in self.checked:
            return
        frame = frame or self.frame
        assert frame.evaluate("() => document.documentElement.lang") == self.lang, page_type
        self.checked[page_type] = run_axe(frame, self.axe_source)

    def text(self, frame: Any = None) -> str:
        return re.sub(r"\s+", " ", (frame or self.frame).inner_text("body"))

    def answer_quiz(self, module_id: str, right: bool) -> None:
        module = self.course.module(module_id)
        assert module is not None
        frame = self.wait_for("/course/quiz/")
        self.axe("quiz")
        names = frame.eval_on_selector_all(
            "fieldset.question input", "els => [...new Set(els.map(e => e.name))]")
        assert len(names) == min(self.course.questions_per_attempt, len(module.questions))
        by_id = {q.id: q for q in module.questions}
        picks: list[list[str]] = []
        for name in names:
            q = by_id[name[2:]]
            choices = sorted(q.correct) if right else [
                next(c.id for c in q.choices if c.id not in q.correct)]
            picks += [[name, c] for c in choices]
        frame.evaluate(
            "picks => picks.forEach(([n, v]) => { document.querySelector("
            "`input[name=\"${n}\"][value=\"${v}\"]`).checked = true; })", picks)
        with frame.expect_navigation():
            frame.click("#submit-quiz")
        self.wait_for("/result")
        self.axe("quiz result")


def run_journey(env: Any, playwright: Any, tmp_path: Path, tls: Any, axe_source: str,
                lang: str, third_party_cookies: bool) -> Journey:
    course = load_course(env.app)
    user_id, name, locale = LEARNERS[lang]
    add_learner(env.lms, user_id, name, locale)
    exam = (datetime.now(UTC).date() - timedelta(days=300)).isoformat()
    plan = env.lms.prepare_launch(
        env.client_id, deployment_id=env.deployment_id, user_id=user_id,
        context_id=env.context_id, resource_link_id=f"rl-{lang}",
        custom={"certification_date": exam, "spin_member": "true"},
        lti_storage_target="post_message_forwarding",
    )
    ctx = chromium(playwright, tmp_path, tls, third_party_cookies=third_party_cookies)
    try:
        # Every request any page makes must go to the tool or the LMS (chrome:// is the
        # browser's own new-tab page).
        external: list[str] = []
        ctx.on("request", lambda r: external.append(r.url) if not re.match(
            r"^(https://(localhost|127\.0\.0\.1):\d+/|data:|about:|blob:|chrome:)", r.url)
            else None)
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.goto(env.lms.course_url(plan))
        j = Journey(page, course, axe_source, lang)
        j.wait_for("/course/")
        total = course.cecs
        assert j.frame.eval_on_selector("progress.cec-bar", "p => [p.value, p.max]") == [0, total]
        j.axe("course home")

        # Keyboard only: Tab reaches the Continue button with a visible focus ring; Enter opens it.
        frame = j.frame
        frame.focus("body")
        for _ in range(30):
            page.keyboard.press("Tab")
            focused = frame.evaluate("() => document.activeElement && document.activeElement.id")
            if focused == "continue":
                break
        else:
            raise AssertionError("Tab never reached the Continue button")
        outline = frame.evaluate(
            "() => getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("none", ""), outline
        with frame.expect_navigation():
            page.keyboard.press("Enter")
        first_module = course.modules[0]
        j.wait_for(f"/lesson/{first_module.lessons[0].id}")
        j.axe("lesson")
        # Reading to the end by scrolling marks the lesson read (no button needed).
        j.frame.locator("#lesson-end").scroll_into_view_if_needed()
        j.frame.wait_for_function(
            "() => document.getElementById('lesson-end').dataset.done === 'true'")

        for mi, module in enumerate(course.modules, start=1):
            for li, lesson in enumerate(module.lessons, start=1):
                j.wait_for(f"/lesson/{lesson.id}")
                nxt = "/quiz" if li == len(module.lessons) else f"/lesson/{module.lessons[li].id}"
                # "Mark as read and continue" (or Next, once read) leads on in course order.
                if j.frame.query_selector("#mark-read"):
                    j.click_and_wait("#mark-read", f"/module/{module.id}")
                else:
                    j.click_and_wait(".pager-next", f"/module/{module.id}")
                if li < len(module.lessons):
                    j.wait_for(nxt)
            frame = j.wait_for(f"/course/module/{module.id}")
            j.axe("module")
            j.click_and_wait("#start-quiz", "/course/quiz/")
            if mi == 1:
                j.answer_quiz(module.id, right=False)
                assert j.frame.query_selector(".result-fail") is not None
                j.click_and_wait("#retake-quiz", "/course/quiz/")
            j.answer_quiz(module.id, right=True)
            assert j.frame.query_selector(".result-pass") is not None
            if mi < len(course.modules):
                j.click_and_wait(".result .actions .button", f"/module/{course.modules[mi].id}/")

        # Everything passed: all CECs, eligible to renew, a certificate.
        j.click_and_wait(".tool-nav a[href*='/course/']", "/course/")
        progress = j.frame.eval_on_selector("progress.cec-bar", "p => [p.value, p.max]")
        assert progress == [total, total]
        j.click_and_wait(".tool-nav a[href*='/record/']", "/record/")
        j.axe("record")
        assert j.frame.eval_on_selector("#renewal-state", "e => e.className").endswith(
            "badge-eligible")
        assert j.frame.query_selector("#record-renewal") is not None
        j.click_and_wait(".tool-nav a[href*='/record/certificate']", "/record/certificate")
        j.axe("certificate (issue)")
        assert j.frame.input_value("#holder_name") == name
        j.click_and_wait("#issue-certificate", "/record/certificate")
        j.frame.wait_for_selector("#verification-code")
        j.axe("certificate")
        code = j.frame.inner_text("#verification-code").strip()
        with page.expect_download() as dl:
            j.frame.click("#download-pdf")
        pdf_path = dl.value.path()
        from pypdf import PdfReader

        pdf_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(
            Path(pdf_path).read_bytes())).pages).replace("\n", " ")
        assert name in pdf_text and code in pdf_text
        # The CECs, whatever the language's word order: "14 SPIN® CECs", "14 CEC SPIN®"…
        assert re.search(rf"(?<![\d.,]){total:g}(?![\d.,])[^\d]{{0,12}}CEC", pdf_text), pdf_text
        verify_url = j.frame.get_attribute("#verify-link", "href")
        assert verify_url.endswith("/verify/" + code) and "lt=" not in verify_url

        # The public verification page, in a tab of its own.
        public = ctx.new_page()
        public.set_extra_http_headers({"Accept-Language": locale})
        public.goto(verify_url)
        assert public.query_selector("#verified") is not None
        assert name in public.inner_text("#verified")
        j.axe("verification", frame=public.main_frame)
        public.close()

        # An error page inside the frame.
        j.frame.goto(env.tool.url + "/course/module/no-such-module")
        j.axe("error")
        assert not external, external
        return j
    finally:
        ctx.close()


@pytest.mark.parametrize("third_party_cookies", [False, True], ids=["3pc-blocked", "3pc-allowed"])
@pytest.mark.parametrize("lang", ["en", "de", "es"])
def test_learner_journey(tls_env, playwright_instance, tmp_path, tls, axe_source, lang,
                         third_party_cookies):
    j = run_journey(tls_env, playwright_instance, tmp_path, tls, axe_source, lang,
                    third_party_cookies)
    expected = {"course home", "lesson", "module", "quiz", "quiz result", "record",
                "certificate (issue)", "certificate", "verification", "error"}
    assert set(j.checked) == expected
    violations = {k: v for k, v in j.checked.items() if v}
    assert not violations, violations


def test_every_page_fits_a_phone_screen(tls_env, playwright_instance, tmp_path, tls, axe_source):
    """A phone-width window (the LMS app opens the tool full screen): no page scrolls
    sideways, and the WCAG 2.2 AA rules (target size included) still pass."""
    env = tls_env
    course = load_course(env.app)
    add_learner(env.lms, "learner-phone", "Ana García", "es-ES")
    plan = env.lms.prepare_launch(
        env.client_id, deployment_id=env.deployment_id, user_id="learner-phone",
        context_id=env.context_id, resource_link_id="rl-phone",
    )
    from tests.lms.web import with_query

    ctx = chromium(playwright_instance, tmp_path, tls, third_party_cookies=False,
                   width=360, height=780)
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.goto(with_query(plan.login_url, **plan.login_params))
        page.wait_for_url(re.compile(r".*/course/.*"))
        problems: dict[str, Any] = {}

        def check(kind: str) -> None:
            page.wait_for_load_state("domcontentloaded")
            wide = page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]")
            if wide[0] > wide[1]:
                problems[kind + " (scrolls sideways)"] = wide
            found = run_axe(page.main_frame, axe_source)
            if found:
                problems[kind] = found

        check("course home")
        module = course.modules[0]
        base = env.tool.url
        for lesson in module.lessons:  # top level, so the session cookie is first-party
            page.goto(f"{base}/course/module/{module.id}/lesson/{lesson.id}")
            check("lesson")
            page.click("#mark-read")
            page.wait_for_load_state("domcontentloaded")
        # Every other lesson too: each has its own tables, figures and lists.
        for other in course.modules[1:]:
            for lesson in other.lessons:
                page.goto(f"{base}/course/module/{other.id}/lesson/{lesson.id}")
                check(f"lesson {other.id}/{lesson.id}")
        page.goto(f"{base}/course/module/{module.id}")
        check("module")
        page.click("#start-quiz")
        page.wait_for_url(re.compile(r".*/course/quiz/\d+.*"))
        check("quiz")
        page.click("#submit-quiz")  # nothing answered: the error summary
        page.wait_for_selector("#error-summary")
        check("quiz with errors")
        page.evaluate("() => document.querySelectorAll('fieldset.question').forEach("
                      "f => { f.querySelector('input').checked = true; })")
        page.click("#submit-quiz")
        page.wait_for_url(re.compile(r".*/result.*"))
        check("quiz result")
        page.goto(f"{base}/record/")
        check("record")
        page.click("#save-date")  # empty: the error message
        page.wait_for_selector("#certification_date-error")
        check("record with errors")
        page.goto(f"{base}/record/certificate")
        check("certificate")
        page.goto(f"{base}/verify/0000-0000-0000-0000")
        check("verification")
        page.goto(f"{base}/course/module/no-such-module")
        check("error")
        assert not problems, problems
    finally:
        ctx.close()
