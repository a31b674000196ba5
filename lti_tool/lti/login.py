"""OIDC third-party initiated login (LTI Core 1.3 §4.1, Security Framework §5.1.1).

pylti1p3 builds the authentication request; around it we bind the nonce to the state in the
shared cache (so the launch can check both belong to one login), refuse unknown or disabled
platforms with a clear page, and write the state to platform storage when the LMS offers it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template, request
from pylti1p3.contrib.flask import FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import OIDCException
from pylti1p3.session import SessionService
from werkzeug.wrappers import Response

from .. import cache, db
from .cookies import PartitionedCookieService
from .errors import LtiError
from .registry import DbToolConf, Registry

LOGIN_KEY = "lti:login:"
# Parameters a new-window restart of the login needs (LTI Core §4.1.1).
RESTART_PARAMS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "lti_deployment_id",
    "client_id",
)


class LoginStateStore(SessionService):
    """Where pylti1p3 puts the nonce and the state's parameters: the shared cache.

    pylti1p3 keeps the nonce in the Flask session by default, which a blocked third-party cookie
    loses, and it never ties the nonce to the state. Here both are stored under the state.
    """

    def __init__(self, req: FlaskRequest, ttl: int) -> None:
        super().__init__(req)
        self._ttl = ttl
        self._nonce: str | None = None

    def save_nonce(self, nonce: str) -> None:
        self._nonce = nonce

    def save_state_params(self, state: str, params: dict[str, Any]) -> None:
        cache.set(LOGIN_KEY + state, {**params, "nonce": self._nonce}, self._ttl)


def login_state(state: str) -> dict[str, Any] | None:
    data = cache.get(LOGIN_KEY + state)
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
    req = FlaskRequest()
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
    oidc = FlaskOIDCLogin(
        req,
        DbToolConf(registry, s),
        session_service=LoginStateStore(req, current_app.config["LTI_LOGIN_STATE_TTL"]),
        cookie_service=cookies,
    )
    params: dict[str, Any] = {k: req.get_param(k) for k in RESTART_PARAMS if req.get_param(k)}
    params.update(client_id=view.client_id, reg=view.pk, storage_target=storage_target)
    oidc.pass_params_to_launch(params)
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
            state=state,
            storage_target=storage_target,
            platform_origin=f"{platform.scheme}://{platform.netloc}",
        )
    )
    cookies.update_response(resp)
    return resp


def _query_param(url: str, name: str) -> str:
    from urllib.parse import parse_qs

    return parse_qs(urlsplit(url).query).get(name, [""])[0]
