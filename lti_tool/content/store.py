"""The loaded course for an app: read and rendered once per process, never per request."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .loader import load
from .model import Course

log = logging.getLogger(__name__)
_lock = threading.Lock()
# Per process and content folder: apps built for tests or workers share one parse. The key holds
# the newest modification time, so an edited course is read again.
_loaded: dict[tuple[str, float], Course] = {}
# A failed load is remembered too, so a broken course is not parsed again on every request.
_failed: dict[tuple[str, float], str] = {}


def _signature(root: Path) -> tuple[str, float]:
    newest = max((p.stat().st_mtime for p in root.rglob("*") if p.is_file()), default=0.0)
    return str(root.resolve()), newest


class ContentError(RuntimeError):
    pass


def default_content_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "course_content", here / "course_content"):
        if candidate.is_dir():
            return candidate
    return here.parent / "course_content"


def get_course(app: Flask | None = None) -> Course:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    course: Course | None = app.extensions.get("lti_tool.course")
    if course is not None:
        return course
    with _lock:
        course = app.extensions.get("lti_tool.course")
        if course is None:
            key = _signature(Path(app.config["COURSE_CONTENT_DIR"]))
            course = _loaded.get(key)
            if course is None:
                if key in _failed:
                    raise ContentError(_failed[key])
                loaded, problems = load(key[0])
                if problems or loaded is None:
                    for p in problems[:20]:
                        log.error("course content: %s", p)
                    _failed[key] = (
                        f"{len(problems)} problems in the course content; "
                        "run 'flask content check'"
                    )
                    raise ContentError(_failed[key])
                _loaded[key] = course = loaded
            app.extensions["lti_tool.course"] = course
    return course


def init_app(app: Flask) -> None:
    app.config.setdefault("COURSE_CONTENT_DIR", str(default_content_dir()))
    app.cli.add_command(content_cli)
    # Parse and render the course when a worker starts, not on its first learner's request.
    # A broken course is logged here and refused per request; `content check` still runs.
    try:
        get_course(app)
    except ContentError as exc:
        log.error("%s", exc)


@click.group("content", cls=AppGroup, help="Course content commands.")
def content_cli() -> None:
    pass


@content_cli.command("check")
@click.option("--path", default=None, type=click.Path(file_okay=False),
              help="A course folder (default: the configured course_content).")
def check_command(path: str | None) -> None:
    """Report every problem in the course content with file and line; non-zero exit if any."""
    root = Path(path or current_app.config["COURSE_CONTENT_DIR"])
    course, problems = load(root)
    for p in problems:
        click.echo(str(p))
    if problems or course is None:
        raise click.ClickException(f"{len(problems)} problem(s) in {root}")
    words = {lang: sum(sum(les.words.get(lang, 0) for les in m.lessons) for m in course.modules)
             for lang in course.languages}
    click.echo(
        f"OK: {len(course.modules)} modules, {course.lesson_count} lessons, "
        f"{course.question_count} questions, {course.cecs:g} CECs; words "
        + ", ".join(f"{lang} {n}" for lang, n in words.items())
    )
