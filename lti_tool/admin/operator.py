"""The tool operator's platform administration: registrations, deployments, pending ones.

This is not for LMS course admins: it is protected by an operator password whose hash is set by
configuration (`OPERATOR_PASSWORD_HASH`, made with `flask operator hash-password`). Without it
every page here answers 404; there is no default password. The operator's login lives only in
the session cookie, never in the `lt` URL token that launches use, and an LTI launch in the same
browser ends it (the launch re-binds the session).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import click
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.cli import AppGroup
from flask_babel import format_datetime, lazy_gettext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.security import check_password_hash, generate_password_hash

from .. import cache, db
from ..identity.models import LmsContext
from ..lti import services
from ..lti.models import Deployment, Registration
from ..web import csrf
from . import audit

log = logging.getLogger(__name__)
bp = Blueprint("operator", __name__, url_prefix="/operator")
csrf.exempt(bp)

FAIL_KEY = "operator:fail:"
ACTION_LABELS = {
    "operator_login": lazy_gettext("Signed in"),
    "registration_activated": lazy_gettext("Registration activated"),
    "registration_deactivated": lazy_gettext("Registration deactivated"),
    "deployment_activated": lazy_gettext("Deployment activated"),
    "deployment_deactivated": lazy_gettext("Deployment deactivated"),
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def password_hash() -> str | None:
    """The configured hash, or None when the page is off (or the value is not a hash)."""
    value = current_app.config.get("OPERATOR_PASSWORD_HASH")
    if not isinstance(value, str) or not value:
        return None
    # A plain password pasted into the setting must not become the password.
    if not value.startswith(("scrypt:", "pbkdf2:")) or value.count("$") < 2:
        return None
    return value


def is_operator() -> bool:
    if not session.get("op") or getattr(session, "via_url", False):
        return False
    return float(session.get("op_until", 0)) > time.time()


@bp.before_request
def _enabled() -> None:
    if password_hash() is None:
        abort(404)
    # Checked here rather than by the app-wide hook, so that a switched-off page is a 404 for
    # every method; the check itself is the same (CSRFError → the translated 400 page).
    if request.method == "POST":
        csrf.protect()


@bp.after_request
def _not_framed(resp: Response) -> Response:
    # Top-level pages only: nobody may frame the operator's buttons (clickjacking).
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _client_key() -> str:
    return FAIL_KEY + (request.remote_addr or "unknown")


def _failures() -> int:
    value = cache.get(_client_key())
    return int(value) if isinstance(value, int) else 0


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if is_operator():
            return redirect(url_for("operator.dashboard"), code=303)
        return render_template("admin/operator_login.html", error=None)
    cfg = current_app.config
    limit = int(cfg.get("OPERATOR_MAX_FAILURES", 5))
    window = int(cfg.get("OPERATOR_FAILURE_WINDOW", 900))
    if _failures() >= limit:
        log.warning("operator login refused: too many failures from %s", request.remote_addr)
        return render_template(
            "admin/operator_login.html",
            error=_("Too many failed attempts. Wait a few minutes and try again."),
        ), 429
    password = request.form.get("password", "")
    hashed = password_hash()
    if not password or hashed is None or not check_password_hash(hashed, password):
        cache.set(_client_key(), _failures() + 1, window)
        log.warning("operator login failed from %s", request.remote_addr)
        return render_template(
            "admin/operator_login.html", error=_("The password is not correct.")
        ), 401
    cache.delete(_client_key())
    # A fresh session: nothing from before the login (fixation) survives it.
    session.clear()
    session["op"] = True
    session["op_until"] = time.time() + int(cfg.get("OPERATOR_SESSION_SECONDS", 3600))
    s = db.session()
    audit.record(s, action="operator_login", actor=audit.OPERATOR,
                 changes={"address": request.remote_addr or ""})
    s.commit()
    return redirect(url_for("operator.dashboard"), code=303)


@bp.post("/logout")
def logout() -> Response:
    session.pop("op", None)
    session.pop("op_until", None)
    return redirect(url_for("operator.login"), code=303)  # type: ignore[return-value]


def _require() -> Response | None:
    if not is_operator():
        return redirect(url_for("operator.login"), code=303)  # type: ignore[return-value]
    return None


@bp.get("/")
def dashboard() -> Any:
    if (resp := _require()) is not None:
        return resp
    s = db.session()
    regs = list(
        s.scalars(
            select(Registration)
            .options(selectinload(Registration.deployments))
            .order_by(Registration.id)
        )
    )
    contexts = dict(
        s.execute(
            select(LmsContext.deployment_id, func.count(LmsContext.id)).group_by(
                LmsContext.deployment_id
            )
        ).all()
    )
    pending_regs = [r for r in regs if not r.is_active and r.source == "dynamic"]
    pending_deps = [(r, d) for r in regs for d in r.deployments if not d.is_active]
    return render_template(
        "admin/operator.html",
        regs=regs,
        contexts=contexts,
        pending_regs=pending_regs,
        pending_deps=pending_deps,
        entries=audit.entries(s, context_pk=None, limit=50),
        action_label=lambda a: str(ACTION_LABELS.get(a, a)),
        fmt_datetime=lambda v: format_datetime(v, "medium") if v else "",
        done=request.args.get("done"),
    )


def _flag() -> bool:
    value = request.form.get("active")
    if value not in ("0", "1"):
        abort(400)
    return value == "1"


@bp.post("/registrations/<int:pk>/active")
def registration_active(pk: int) -> Any:
    if (resp := _require()) is not None:
        return resp
    s = db.session()
    reg = s.get(Registration, pk)
    if reg is None:
        abort(404)
    on = _flag()
    if reg.is_active != on:
        audit.record(
            s, action="registration_activated" if on else "registration_deactivated",
            actor=audit.OPERATOR,
            changes={"registration": pk, "issuer": reg.issuer, "client_id": reg.client_id,
                     "active": [reg.is_active, on]},
        )
        reg.is_active = on
        s.commit()
        services().registry.invalidate()
    return redirect(url_for("operator.dashboard", done="saved"), code=303)


@bp.post("/deployments/<int:pk>/active")
def deployment_active(pk: int) -> Any:
    if (resp := _require()) is not None:
        return resp
    s = db.session()
    dep = s.get(Deployment, pk)
    if dep is None:
        abort(404)
    on = _flag()
    if dep.is_active != on:
        reg = dep.registration
        audit.record(
            s, action="deployment_activated" if on else "deployment_deactivated",
            actor=audit.OPERATOR,
            changes={"registration": reg.id, "issuer": reg.issuer, "client_id": reg.client_id,
                     "deployment_id": dep.deployment_id, "active": [dep.is_active, on]},
        )
        dep.is_active = on
        s.commit()
        services().registry.invalidate()
    return redirect(url_for("operator.dashboard", done="saved"), code=303)


# ----------------------------------------------------------------------------- CLI

operator_cli = AppGroup("operator", help="The operator's platform administration page.")


@operator_cli.command("hash-password")
@click.password_option(help="The operator password (asked for when not given).")
def hash_password(password: str) -> None:
    """Print the OPERATOR_PASSWORD_HASH value for a password."""
    if len(password) < 12:
        raise click.ClickException("use at least 12 characters")
    click.echo(generate_password_hash(password))
