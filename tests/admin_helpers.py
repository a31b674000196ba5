"""Shared by the course-admin, deep-linking, NRPS and role tests: a 14-CEC course, form parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from flask import Flask

from lti_tool import db
from lti_tool.content import Course
from lti_tool.content.loader import load

FIXTURE = Path(__file__).parent / "content_fixtures" / "valid"


def admin_course() -> Course:
    """The valid fixture course reshaped to the real course's 14 CECs, with a third module, so
    that one module (and only that one) can be left out: 8 + 6 + 2 = 16 CECs offered."""
    base, problems = load(FIXTURE)
    assert base is not None, problems
    basics, practice = base.modules
    extra = replace(
        basics,
        id="extra",
        cecs=2,
        title={k: v + " +" for k, v in basics.title.items()},
        lessons=tuple(replace(les, module_id="extra") for les in basics.lessons),
    )
    return replace(
        base,
        cecs=14,
        modules=(replace(basics, cecs=8), replace(practice, cecs=6), extra),
    )


def use_course(app: Flask, course: Course | None = None) -> Course:
    course = course or admin_course()
    app.extensions["lti_tool.course"] = course
    return course


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)
    checkboxes: dict[str, str] = field(default_factory=dict)  # name -> value, unchecked too

    def data(self, **override: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.fields:
            if name in out:
                existing = out[name]
                out[name] = (existing if isinstance(existing, list) else [existing]) + [value]
            else:
                out[name] = value
        for key, value in override.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None
        self._option: tuple[str, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        if not self.forms:
            return
        form = self.forms[-1]
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                form.checkboxes[a["name"]] = a.get("value", "on")
                if "checked" in a:
                    form.fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button"):
                form.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            form.fields.append((self._select, a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def forms(resp: requests.Response) -> list[Form]:
    parser = _Forms()
    parser.feed(resp.text)
    for f in parser.forms:
        f.action = urljoin(resp.url, f.action)
    return parser.forms


def form(resp: requests.Response, action_part: str) -> Form:
    found = [f for f in forms(resp) if action_part in f.action]
    assert found, f"no form posting to {action_part!r} in {resp.url}: {resp.text[:500]}"
    return found[0]


def csrf_token(resp: requests.Response) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', resp.text)
    assert m, resp.text[:500]
    return m.group(1)


def session_token(resp: requests.Response) -> str | None:
    m = re.search(r'name="lt" value="([^"]+)"', resp.text)
    return m.group(1) if m else None


def query(app: Flask, fn: Any) -> Any:
    with app.app_context(), db.standalone_session() as s:
        return fn(s)
