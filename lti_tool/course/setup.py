"""The course admin's set-up of the session's LMS context, as the learner pages apply it: read
once per request, and the languages and dates it allows."""

from __future__ import annotations

from datetime import date

from flask import g, session
from sqlalchemy.exc import SQLAlchemyError

from .. import db
from ..admin import CourseSettings, is_course_admin, settings_for
from ..content import get_course


def course_settings() -> CourseSettings:
    """The settings of the session's LMS context (the defaults without one), once per request."""
    key = session.get("ctx")
    cached = g.get("course_settings")
    if cached is None or cached[0] != key:
        # A launch knows the set-up's version from the context row (g.settings_version).
        version = g.get("settings_version") if key == g.get("settings_version_ctx") else None
        cached = g.course_settings = (
            key, settings_for(db.session(), key, get_course(), known_version=version)
        )
    settings: CourseSettings = cached[1]
    return settings


def language_policy() -> tuple[tuple[str, ...], str] | None:
    """(languages the learner may choose, the course language) or None for no restriction.

    The languages are "which languages learners may choose": course admins, who may be
    configuring a course in a language they do not read, keep every language.
    """
    if not session.get("iid") or not session.get("ctx"):
        return None
    try:
        if is_course_admin():
            return None
        settings = course_settings()
    except SQLAlchemyError:
        # Error pages render this too, perhaps because the database is down.
        return None
    return settings.languages, settings.course_language


def is_open_for_session(today: date) -> bool:
    """Learners use the course between its start and end dates; course admins always."""
    return course_settings().is_open(today) or is_course_admin()
