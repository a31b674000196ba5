"""Who may use the course-admin pages: the launch's LTI roles, checked on every request."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, g, session

from .. import db
from ..content import get_course
from ..identity.models import Instructor, LmsContext
from . import settings as cfg

F = TypeVar("F", bound=Callable[..., Any])


def is_course_admin() -> bool:
    """The session's user administers the session's LMS context.

    The launch decided for instructors, administrators and content developers (session "adm");
    a teaching assistant is an admin only where this context's admins (or the operator, by
    ALLOW_ASSISTANT_ADMINS) allow it, which can change after the launch.
    """
    if "is_course_admin" in g:
        return bool(g.is_course_admin)
    g.is_course_admin = _decide()
    return bool(g.is_course_admin)


def _decide() -> bool:
    if not session.get("iid"):
        return False
    if session.get("adm"):
        return True
    # The launch classified the roles ("ta"); whether assistants administer this context is
    # the context's setting (or the operator's), which may change after the launch.
    if not session.get("ta") or not session.get("ctx"):
        return False
    if current_app.config.get("ALLOW_ASSISTANT_ADMINS"):
        return True
    return cfg.load(db.session(), session["ctx"], get_course()).allow_assistants


def course_admin_required(view: F) -> F:
    """401 without a launch; 403 (a translated page) for anyone but a course admin."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not session.get("iid"):
            abort(401)
        if not is_course_admin():
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_admin() -> Instructor:
    inst = db.session().get(Instructor, session["iid"])
    if inst is None:
        abort(401)
    return inst


def current_context() -> LmsContext | None:
    ctx = session.get("ctx")
    return db.session().get(LmsContext, ctx) if ctx else None
