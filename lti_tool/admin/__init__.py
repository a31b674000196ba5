"""Course administration for LMS course admins, and the operator's platform administration.

Public surface:

- `settings_for(s, context_pk, course=None, known_version=None) -> CourseSettings`: the course
  set-up of an LMS context (modules offered and required in their order, pass mark, quiz
  cooldown, languages, course language, start/end dates, `version`); defaults when the admin
  saved nothing. The learner journey reads it; a changed setting applies to attempts started
  afterwards. With the context's `settings_version` (a launch has it) a worker answers from
  memory when it holds that version.
- `course_admin_required` (view decorator) and `is_course_admin()`: the role check of the
  admin pages (403 for learners), including the per-context teaching-assistant allowance.
- `CourseConfig`, `AuditEntry` (models), `audit.record(...)`.
- `init_app(app)`: the `admin` blueprint (/admin/...), the `operator` blueprint
  (/operator/..., 404 unless OPERATOR_PASSWORD_HASH is set) and the `flask operator` CLI.
"""

from __future__ import annotations

import os

from flask import Flask
from sqlalchemy.orm import Session

from ..content import Course, get_course
from . import audit
from .access import course_admin_required, is_course_admin
from .models import AuditEntry, CourseConfig
from .settings import CourseSettings

__all__ = [
    "AuditEntry",
    "CourseConfig",
    "CourseSettings",
    "audit",
    "course_admin_required",
    "init_app",
    "is_course_admin",
    "settings_for",
]


def settings_for(
    s: Session, context_pk: int | None, course: Course | None = None,
    known_version: int | None = None,
) -> CourseSettings:
    from .settings import load

    return load(s, context_pk, course or get_course(), known_version=known_version)


def init_app(app: Flask) -> None:
    from .nrps import make_http
    from .operator import bp as operator_bp
    from .operator import operator_cli
    from .views import admin_home_url
    from .views import bp as admin_bp

    app.config.setdefault(
        "OPERATOR_PASSWORD_HASH", os.environ.get("OPERATOR_PASSWORD_HASH") or None
    )
    app.extensions["lti_tool.admin.http"] = make_http()
    app.register_blueprint(admin_bp)
    app.register_blueprint(operator_bp)
    app.cli.add_command(operator_cli)
    app.context_processor(lambda: {"admin_home_url": admin_home_url})
