"""Driving the learner pages through real launches (shared by the learning and record tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from lti_tool.content import Course, get_course
from tests.lms import Browser
from tests.lms.browser import parse_forms

FIXTURE_COURSE = str(Path(__file__).parent / "content_fixtures" / "valid")


def use_fixture_course(app: Any, cooldown: int = 0) -> Course:
    app.config["COURSE_CONTENT_DIR"] = FIXTURE_COURSE
    app.config["QUIZ_COOLDOWN_SECONDS"] = cooldown
    app.extensions.pop("lti_tool.course", None)
    with app.app_context():
        return get_course()


def form(resp: requests.Response, action_part: str) -> Any:
    for f in parse_forms(resp.text, resp.url):
        if action_part in f.action:
            return f
    raise AssertionError(f"no form posting to *{action_part}* in {resp.url}:\n{resp.text[:2000]}")


def link(resp: requests.Response, href_part: str) -> str:
    for href in re.findall(r'href="([^"]+)"', resp.text):
        href = href.replace("&amp;", "&")
        if href_part in href:
            return urljoin(resp.url, href)
    raise AssertionError(f"no link to *{href_part}* in {resp.url}")


def submit(b: Browser, resp: requests.Response, action_part: str,
           data: list[tuple[str, str]] | None = None) -> requests.Response:
    f = form(resp, action_part)
    names = {k for k, _ in data or []}
    fields = [(k, v) for k, v in f.fields.items() if k not in names] + list(data or [])
    return b.request("POST", f.action, data=fields, initiator=resp.url)  # type: ignore[arg-type]


def read_module(b: Browser, base: str, course: Course, module_id: str) -> None:
    """Open every lesson of a module and confirm it read (the no-script path)."""
    module = course.module(module_id)
    assert module is not None
    for lesson in module.lessons:
        page = b.get(f"{base}/course/module/{module_id}/lesson/{lesson.id}")
        assert page.status_code == 200, page.text[:500]
        done = submit(b, page, f"/lesson/{lesson.id}/done")
        assert done.status_code == 200, done.text[:500]


def start_quiz(b: Browser, module_page: requests.Response, module_id: str) -> requests.Response:
    return submit(b, module_page, f"/course/module/{module_id}/quiz")


def drawn_question_ids(quiz_page: requests.Response) -> list[str]:
    seen: list[str] = []
    for qid in re.findall(r'name="q-([a-z0-9-]+)"', quiz_page.text):
        if qid not in seen:
            seen.append(qid)
    return seen


def answers(course: Course, module_id: str, quiz_page: requests.Response, right: int) -> list[
    tuple[str, str]
]:
    """Answer the first `right` drawn questions correctly and the rest wrongly."""
    module = course.module(module_id)
    assert module is not None
    by_id = {q.id: q for q in module.questions}
    out: list[tuple[str, str]] = []
    for i, qid in enumerate(drawn_question_ids(quiz_page)):
        q = by_id[qid]
        if i < right:
            out += [(f"q-{qid}", c) for c in sorted(q.correct)]
        else:
            wrong = next(c.id for c in q.choices if c.id not in q.correct)
            out.append((f"q-{qid}", wrong))
    return out


def take_quiz(b: Browser, course: Course, module_id: str, module_page: requests.Response,
              right: int) -> requests.Response:
    quiz_page = start_quiz(b, module_page, module_id)
    assert quiz_page.status_code == 200 and "/course/quiz/" in quiz_page.url, quiz_page.text[:800]
    return submit(b, quiz_page, "/course/quiz/", answers(course, module_id, quiz_page, right))
