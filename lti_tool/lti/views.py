"""The LTI endpoints: login, launch, key set, Canvas configuration, dynamic registration."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from .. import cache, db, i18n
from ..identity.service import record_launch
from ..web import csrf
from . import dynreg, keys, landing, login, services
from .cookies import PartitionedCookieService
from .errors import LtiError
from .launch import CLAIM, LAUNCH_KEY, ToolMessageLaunch
from .request import lti_request
from .session import carry_token_in_urls

log = logging.getLogger(__name__)
bp = Blueprint("lti", __name__, url_prefix="/lti")
PENDING_KEY = "lti:pending:"


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
@csrf.exempt
def login_view() -> Response:
    return login.start(services().registry)


def _hint_language_from_token() -> None:
    """Show a refusal in the learner's language, read from the (unverified) token.

    Only the display language is taken from an unverified token; nothing else is trusted.
    """
    token = request.form.get("id_token", "")
    try:
        body = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        locale = body.get(CLAIM + "launch_presentation", {}).get("locale")
    except (ValueError, IndexError, AttributeError, TypeError, RecursionError):
        return
    lang = i18n.negotiate(locale if isinstance(locale, str) else None)
    if lang:
        g.lang_hint = lang


@bp.route("/launch", methods=["POST"])
@csrf.exempt
def launch() -> Response | str:
    svc = services()
    s = db.session()
    message = ToolMessageLaunch(lti_request(), s, svc.registry, svc.platform_keys, svc.http)
    try:
        message.validate()
    except LtiError:
        _hint_language_from_token()  # the refusal in the learner's language
        raise
    if message.binding == "platform_storage":
        s.commit()  # the nonce is spent even if the page never confirms
        pending = secrets.token_urlsafe(24)
        state_hash = PartitionedCookieService.short(request.form["state"])
        cache.set(
            PENDING_KEY + pending,
            {
                "launch_id": message.get_launch_id(),
                "state": state_hash,
                "reg": message.registration_view.pk,
                "dep": message.deployment_view.pk,
            },
            current_app.config["LTI_LOGIN_STATE_TTL"],
        )
        auth = urlsplit(message.registration_view.auth_login_url)
        return render_template(
            "lti/launch_storage.html",
            pending=pending,
            state=state_hash,
            storage_target=request.form.get("lti_storage_target", ""),
            platform_origin=f"{auth.scheme}://{auth.netloc}",
        )
    return _start_session(
        message.claims,
        message.get_launch_id(),
        message.registration_view.pk,
        message.registration_view.issuer,
        message.deployment_view.pk,
    )


@bp.post("/launch/verify")
@csrf.exempt
def launch_verify() -> Response:
    """Second half of a cookie-less launch: the page read the state back from the LMS."""
    pending_id = request.form.get("pending", "")
    pending = cache.get(PENDING_KEY + pending_id) if pending_id else None
    if not isinstance(pending, dict):
        raise LtiError("bad_state", "pending launch unknown, expired or used")
    cache.delete(PENDING_KEY + pending_id)
    # Bytes: compare_digest refuses non-ASCII str, and the form field is attacker-controlled.
    sent = request.form.get("state", "").encode()
    if not secrets.compare_digest(str(pending["state"]).encode(), sent):
        raise LtiError("bad_state", "platform storage returned another state")
    claims = cache.get(LAUNCH_KEY + pending["launch_id"])
    if not isinstance(claims, dict):
        raise LtiError("bad_state", "launch data expired")
    presentation = claims.get(CLAIM + "launch_presentation")
    hint = i18n.negotiate(presentation.get("locale") if isinstance(presentation, dict) else None)
    if hint:
        g.lang_hint = hint
    view = services().registry.by_pk(db.session(), pending["reg"])
    if view is None or not view.is_active:
        raise LtiError("unknown_platform", "registration vanished")
    return _start_session(claims, pending["launch_id"], view.pk, view.issuer, pending["dep"])


def _start_session(
    claims: dict[str, Any], launch_id: str, reg_pk: int, issuer: str, dep_pk: int
) -> Response:
    s = db.session()
    ident = record_launch(
        s,
        issuer=issuer,
        deployment_pk=dep_pk,
        claims=claims,
        allow_assistants=bool(current_app.config.get("ALLOW_ASSISTANT_ADMINS", False)),
    )
    # One transaction per launch: the spent nonce and the launch's identity records.
    s.commit()
    presentation = claims.get(CLAIM + "launch_presentation")
    locale = presentation.get("locale") if isinstance(presentation, dict) else None
    lang = (
        ident.preferred_language
        or i18n.negotiate(locale)
        or request.accept_languages.best_match(i18n.LANGUAGES)
        or i18n.DEFAULT
    )
    # Re-bind the session on every launch: a new user in this browser never sees the last one.
    session.clear()
    session.update(
        iid=ident.instructor_id,
        reg=reg_pk,
        dep=dep_pk,
        ctx=ident.context_pk,
        rl=ident.resource_link_pk,
        adm=ident.is_admin,
        ta=ident.is_assistant,
        lang=lang,
        lid=launch_id,
        csrf_token=secrets.token_hex(20),
    )
    session.permanent = True
    g.pop("lang_hint", None)
    carry_token_in_urls()
    message_type = claims.get(CLAIM + "message_type")
    log.info(
        "launch ok: instructor=%s registration=%s deployment=%s type=%s",
        ident.instructor_id,
        reg_pk,
        dep_pk,
        message_type,
    )
    if message_type == "LtiDeepLinkingRequest":
        # The picker checks the role itself (403 for learners; TAs where the course allows).
        return redirect(url_for("deeplink.picker"), code=303)
    page = landing()
    if page is not None:
        i18n.refresh()  # the language was chosen above, after anything read it
        return make_response(page(ident))
    if ident.module_id:
        return redirect(url_for("course.module", module_id=ident.module_id), code=303)
    return redirect(url_for("course.home"), code=303)


@bp.get("/jwks")
def jwks() -> Response:
    resp = jsonify(keys.jwks(db.session()))
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/config.json")
def config_json() -> Response:
    return jsonify(dynreg.canvas_configuration(_base_url()))


def _base_url() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL")
    return str(base) if base else request.host_url.rstrip("/")


@bp.get("/register")
@csrf.exempt
def register() -> str:
    return dynreg.start(_base_url())


@bp.post("/register")
@csrf.exempt
def register_confirm() -> str:
    return dynreg.complete(_base_url())
