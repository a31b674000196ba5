"""OIDC third-party initiated login (LTI Core 1.3 §4.1, Security Framework §5.1.1).

pylti1p3 builds the authentication request. Around it: the state is a signed, timestamped login
record (the nonce, the registration, what a new-window restart needs), so the launch can check
that state and nonce belong to one login of this tool without any server-side storage; unknown or
disabled platforms get a clear page; and the state goes to platform storage when the LMS offers it.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pylti1p3.contrib.flask import FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import OIDCException
from pylti1p3.session import SessionService
from werkzeug.wrappers import Response

from .. import db
from .cookies import PartitionedCookieService
from .errors import LtiError
from .registry import DbToolConf, Registry
from .request import lti_request

STATE_PREFIX = "state-"
# Parameters a new-window restart of the login needs (LTI Core §4.1.1).
RESTART_PARAMS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "lti_deployment_id",
    "client_id",
)


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="lti-login-state")


class _NonceInState(SessionService):
    """pylti1p3 hands us the nonce to keep; it already travels inside the signed state."""

    def save_nonce(self, nonce: str) -> None:
        return None


class ToolOIDCLogin(FlaskOIDCLogin):
    """pylti1p3's login whose state is the signed login record instead of a random id."""

    def __init__(self, req: FlaskRequest, tool_conf: Any, record: dict[str, Any],
                 cookies: PartitionedCookieService) -> None:
        super().__init__(req, tool_conf, session_service=_NonceInState(req), cookie_service=cookies)
        self._record = record
        self._nonce = secrets.token_urlsafe(24)

    def _get_uuid(self) -> str:
        return str(_signer().dumps({**self._record, "nonce": self._nonce}))

    def _generate_nonce(self) -> str:
        return self._nonce


def login_state(state: str) -> dict[str, Any] | None:
    """The login record a state stands for, if this tool issued it recently."""
    if not state.startswith(STATE_PREFIX):
        return None
    try:
        data = _signer().loads(
            state[len(STATE_PREFIX) :], max_age=current_app.config["LTI_LOGIN_STATE_TTL"]
        )
    except BadSignature:
        return None
    return data if isinstance(data, dict) else None


def redirect_uri() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        return str(base) + "/lti/launch"
    return request.host_url.rstrip("/") + "/lti/launch"


def _check_target(target: str | None) -> None:
    """The LMS may only send us to a page of this tool (LTI Core §4.1.1 target_link_uri)."""
    if not target:
        return
    parts = urlsplit(target)
    ours = {urlsplit(request.host_url).netloc}
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        ours.add(urlsplit(str(base)).netloc)
    if parts.scheme not in ("http", "https") or parts.netloc not in ours:
        raise LtiError("bad_target", f"target_link_uri {target!r} is not this tool")


def start(registry: Registry) -> Response:
    req = lti_request()
    iss = req.get_param("iss")
    login_hint = req.get_param("login_hint")
    if not iss or not login_hint:
        raise LtiError("missing_param", "login without iss or login_hint")
    client_id = req.get_param("client_id")
    s = db.session()
    view = registry.find(s, iss, client_id)
    if view is None:
        raise LtiError("unknown_platform", f"iss={iss!r} client_id={client_id!r}")
    if not view.is_active:
        raise LtiError("inactive_platform", f"registration {view.pk} is inactive", status=403)
    _check_target(req.get_param("target_link_uri"))

    storage_target = req.get_param("lti_storage_target")
    cookies = PartitionedCookieService(req)
    record: dict[str, Any] = {k: req.get_param(k) for k in RESTART_PARAMS if req.get_param(k)}
    record.update(client_id=view.client_id, reg=view.pk, storage_target=storage_target)
    oidc = ToolOIDCLogin(req, DbToolConf(registry, s), record, cookies)
    try:
        redirect = oidc.get_redirect_object(redirect_uri())
    except OIDCException as exc:
        raise LtiError("unknown_platform", str(exc)) from exc
    auth_url = redirect.get_redirect_url()
    if not storage_target:
        # A GET redirect, never a POST: Moodle's SameSite=Lax session survives only a GET.
        return redirect.do_redirect()

    state = _query_param(auth_url, "state")
    platform = urlsplit(view.auth_login_url)
    resp = current_app.make_response(
        render_template(
            "lti/login_storage.html",
            auth_url=auth_url,
            state=cookies.short(state),
            storage_target=storage_target,
            platform_origin=f"{platform.scheme}://{platform.netloc}",
        )
    )
    cookies.update_response(resp)
    return resp


def _query_param(url: str, name: str) -> str:
    from urllib.parse import parse_qs

    return parse_qs(urlsplit(url).query).get(name, [""])[0]
