"""The course content: loaded from `course_content/`, checked, rendered once per process.

Public surface: `get_course()` (the loaded, rendered course for this app), `check(path)` (every
problem with file and line), `Course`/`Module`/`Lesson`/`Question`, and the `flask content` CLI.
"""

from __future__ import annotations

from .model import Choice, Course, Lesson, Module, Question
from .store import get_course, init_app

__all__ = ["Choice", "Course", "Lesson", "Module", "Question", "get_course", "init_app"]
