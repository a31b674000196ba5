"""Course pages reached after a launch."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, render_template, session

from .. import db
from ..identity.models import Instructor

bp = Blueprint("course", __name__, url_prefix="/course")
F = TypeVar("F", bound=Callable[..., Any])


def launched(view: F) -> F:
    """Only for a session that came from an LTI launch."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not session.get("iid"):
            abort(401)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin_only(view: F) -> F:
    """Only for course admins (by the launch's LTI roles claim)."""

    @wraps(view)
    @launched
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not session.get("adm"):
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_instructor() -> Instructor:
    inst = db.session().get(Instructor, session["iid"])
    if inst is None:
        abort(401)
    return inst


@bp.get("/")
@launched
def home() -> str:
    return render_template("course/home.html", instructor=current_instructor())


@bp.get("/module/<module_id>")
@launched
def module(module_id: str) -> str:
    return render_template("course/home.html", instructor=current_instructor(), module_id=module_id)


@bp.get("/deep-link")
@admin_only
def deep_link() -> str:
    return render_template("course/deep_link.html")
