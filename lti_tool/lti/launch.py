"""Launch validation (Security Framework 1.0 §5.1.3, LTI Core 1.3 §5) on top of pylti1p3.

pylti1p3's `MessageLaunch` parses the id_token, finds the registration and runs the message
validators. This subclass closes its known gaps (shared/lti-field-notes.md §6.2, §11, §12):

- the nonce is single-use and must be the one issued for this login's state;
- the state must come from a login of this tool and be bound to this browser (cookie) or, where
  the LMS offers it, to the LMS's postMessage platform storage;
- RS256 only, `kid` required, keys cached parsed and re-fetched once on an unknown `kid`;
- `aud` must contain the client id, `azp` must equal it, `iat`/`exp` within a window;
- an unknown deployment is recorded inactive for an operator to activate;
- an unknown issuer or client is an `LtiError`, not a bare `Exception`.

Every refusal is an `LtiError` with a stable code and a 4xx status.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from flask import current_app, url_for
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskRequest
from pylti1p3.exception import LtiException
from pylti1p3.session import SessionService
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import cache, db
from .cookies import PartitionedCookieService
from .errors import LtiError
from .jws import decoder
from .login import RESTART_PARAMS, login_state
from .models import UsedNonce
from .platform_keys import PlatformKeys
from .registry import DbToolConf, DeploymentView, RegistrationView, Registry

log = logging.getLogger(__name__)
_INSERT_NONCE = insert(db.table(UsedNonce))

LAUNCH_KEY = "lti:launch:"
SUPPORTED_MESSAGES = {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
_OBJECT_CLAIMS = (
    CLAIM + "resource_link",
    CLAIM + "context",
    CLAIM + "custom",
    CLAIM + "launch_presentation",
    CLAIM + "tool_platform",
    CLAIM + "lis",
    "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings",
    "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint",
    "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice",
)


class LaunchStore(SessionService):
    """Launch data in the shared cache by launch id, so any worker can restore a launch."""

    def __init__(self, req: FlaskRequest, ttl: int) -> None:
        super().__init__(req)
        self._ttl = ttl

    def save_launch_data(self, key: str, jwt_body: Any) -> None:
        cache.set(LAUNCH_KEY + key, dict(jwt_body), self._ttl)

    def get_launch_data(self, key: str) -> Any:
        return cache.get(LAUNCH_KEY + key)


class ToolMessageLaunch(FlaskMessageLaunch):
    registration_view: RegistrationView
    deployment_view: DeploymentView
    login: dict[str, Any]
    # "cookie" or "platform_storage": how the state was tied to this browser.
    binding: str = ""

    def __init__(
        self,
        req: FlaskRequest,
        s: Session,
        registry: Registry,
        platform_keys: PlatformKeys,
        http: requests.Session,
    ) -> None:
        cfg = current_app.config
        super().__init__(
            req,
            DbToolConf(registry, s),
            session_service=LaunchStore(req, cfg["SESSION_MAX_AGE"]),
            cookie_service=PartitionedCookieService(req),
            requests_session=http,
        )
        self._db = s
        self._registry = registry
        self._keys = platform_keys
        self._skew = int(cfg["LTI_CLOCK_SKEW"])
        self._max_age = int(cfg["LTI_ID_TOKEN_MAX_AGE"])

    # -- the validation sequence -------------------------------------------------------------

    def validate(self) -> ToolMessageLaunch:
        if self._restored:
            raise LtiError("bad_token", "a restored launch cannot be validated again")
        self._validated = True
        try:
            self._library(self.validate_jwt_format)
            self._check_header()
            self._load_login()
            self._library(self.validate_registration)
            self.validate_jwt_signature()
            self._check_browser_binding()
            self.validate_deployment()
            self._check_claim_shapes()
            self._library(self.validate_message)
            self._check_message_type()
            # Last: the nonce insert opens the launch's write transaction, and on SQLite that
            # holds the database's write lock until the launch commits.
            self.validate_nonce()
            self.save_launch_data()
        except Exception:
            self._validated = False
            raise
        return self

    @staticmethod
    def _library(step: Any) -> None:
        try:
            step()
        except LtiException as exc:
            raise LtiError("bad_token", str(exc)) from exc
        except (AttributeError, TypeError, KeyError, ValueError) as exc:
            # pylti1p3 assumes well-formed claims; a signed but malformed token must still be
            # a clean refusal, never a crash.
            raise LtiError("bad_token", f"malformed claims: {exc!r}") from exc

    def _check_claim_shapes(self) -> None:
        """Claims that must be JSON objects when present (LTI Core §5.3, §5.4)."""
        body: dict[str, Any] = dict(self._jwt["body"])
        for name in _OBJECT_CLAIMS:
            if name in body and not isinstance(body[name], dict):
                raise LtiError("bad_token", f"claim {name} is not an object")
        message_type = body.get(CLAIM + "message_type")
        if message_type is not None and not isinstance(message_type, str):
            raise LtiError("bad_token", "message_type is not a string")

    def _check_header(self) -> None:
        header = self._jwt.get("header", {})
        if not isinstance(header, dict) or not isinstance(self._jwt.get("body"), dict):
            raise LtiError("bad_token", "header or body is not a JSON object")
        if header.get("alg") != "RS256":
            raise LtiError("bad_token", f"alg {header.get('alg')!r} is not RS256")
        if not header.get("kid") or not isinstance(header.get("kid"), str):
            raise LtiError("bad_token", "no kid in the id_token header")

    def _load_login(self) -> None:
        state = self._get_request_param("state")
        if not state:
            raise LtiError("bad_state", "no state in the launch")
        login = login_state(state)
        if login is None:
            raise LtiError("bad_state", "state unknown or expired")
        self.login = login

    def validate_registration(self) -> ToolMessageLaunch:
        body = self._jwt["body"]
        iss, aud = body.get("iss"), body.get("aud")
        if not isinstance(iss, str) or not iss:
            raise LtiError("bad_token", "no iss")
        # With several audiences the intended one is `azp` (OIDC Core §2).
        client_id = (
            aud if not isinstance(aud, list) else aud[0] if len(aud) == 1 else body.get("azp")
        )
        if not isinstance(client_id, str) or not client_id:
            raise LtiError("bad_token", "no usable aud/azp")
        view = self._registry.find(self._db, iss, client_id)
        if view is None:
            raise LtiError("unknown_platform", f"iss={iss!r} client_id={client_id!r}")
        if not view.is_active:
            raise LtiError("inactive_platform", f"registration {view.pk}", status=403)
        if view.pk != self.login.get("reg"):
            raise LtiError("bad_state", "the state was issued for another registration")
        self.registration_view = view
        self._registration = self._tool_config.find_registration_by_params(iss, client_id)
        return self

    def validate_jwt_signature(self) -> ToolMessageLaunch:
        view = self.registration_view
        key = self._keys.get(view.key_set_url, self._jwt["header"]["kid"])
        try:
            claims = decoder.decode(
                self._get_id_token(),
                key,
                algorithms=["RS256"],
                audience=view.client_id,
                issuer=view.issuer,
                leeway=self._skew,
                options={"require": ["exp", "iat", "iss", "aud", "nonce"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise LtiError("expired", str(exc)) from exc
        except jwt.InvalidTokenError as exc:
            raise LtiError("bad_token", str(exc)) from exc
        aud, azp = claims.get("aud"), claims.get("azp")
        if isinstance(aud, list) and len(aud) > 1 and azp is None:
            raise LtiError("bad_token", "several audiences and no azp")
        if azp is not None and azp != view.client_id:
            raise LtiError("bad_token", f"azp {azp!r} is not our client id")
        iat = claims["iat"]
        if not isinstance(iat, int | float) or time.time() - iat > self._max_age + self._skew:
            raise LtiError("expired", f"iat {iat!r} older than {self._max_age}s")
        return self

    def _check_browser_binding(self) -> None:
        state = self._get_request_param("state")
        if self._cookie_service.state_is_bound(state):
            self.binding = "cookie"
            return
        if self.login.get("storage_target") and self._get_request_param("lti_storage_target"):
            # Checked in the browser against the LMS's storage before the session starts.
            self.binding = "platform_storage"
            return
        err = LtiError("cookies_blocked", "no state cookie and no platform storage", status=403)
        restart = {k: self.login[k] for k in self.login if k in RESTART_PARAMS and self.login[k]}
        restart["lti1p3_new_window"] = "1"
        err.new_window_url = url_for("lti.login") + "?" + urlencode(restart)  # type: ignore[attr-defined]
        raise err

    def validate_nonce(self) -> ToolMessageLaunch:
        nonce = self._jwt["body"].get("nonce")
        if not isinstance(nonce, str) or not nonce or len(nonce) > 255:
            raise LtiError("bad_token", "no usable nonce")
        if nonce != self.login.get("nonce"):
            raise LtiError("bad_state", "the nonce was not issued with this state")
        # Flushed, not committed: the launch's own writes follow in the same transaction, and a
        # refused launch rolls it back (its nonce is then worthless anyway).
        try:
            db.execute(self._db, _INSERT_NONCE, {"nonce": nonce, "used_at": db.utcnow()})
        except IntegrityError as exc:
            self._db.rollback()
            raise LtiError("replayed", "nonce already used") from exc
        return self

    def validate_deployment(self) -> ToolMessageLaunch:
        dep_id = self._jwt["body"].get(CLAIM + "deployment_id")
        if not isinstance(dep_id, str) or not dep_id or len(dep_id) > 500:
            raise LtiError("bad_token", "no deployment_id")
        dep, created = self._registry.deployment(self._db, self.registration_view, dep_id)
        if created:
            log.warning(
                "new deployment %r of registration %s recorded inactive",
                dep_id,
                self.registration_view.pk,
            )
            raise LtiError("unknown_deployment", f"deployment {dep_id!r} is new", status=403)
        if not dep.is_active:
            raise LtiError("inactive_deployment", f"deployment {dep_id!r}", status=403)
        self.deployment_view = dep
        return self

    def _check_message_type(self) -> None:
        body = self._jwt["body"]
        message_type = body.get(CLAIM + "message_type")
        if message_type not in SUPPORTED_MESSAGES:
            raise LtiError("unsupported_message", f"message_type {message_type!r}")
        roles = body.get(CLAIM + "roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise LtiError("bad_token", "roles is not a list of strings")
        sub = body.get("sub")
        if not isinstance(sub, str) or len(sub) > 255:
            raise LtiError("bad_token", "sub is not a string of at most 255 characters")
        if message_type == "LtiResourceLinkRequest":
            link = body.get(CLAIM + "resource_link")
            if not isinstance(link, dict) or not isinstance(link.get("id"), str):
                raise LtiError("bad_token", "resource_link.id is not a string")
            if len(link["id"]) > 255:
                raise LtiError("bad_token", "resource_link.id longer than 255 characters")
        context = body.get(CLAIM + "context")
        if context is not None and (
            not isinstance(context, dict)
            or not isinstance(context.get("id"), str)
            or len(context["id"]) > 255
        ):
            raise LtiError("bad_token", "context claim without a usable id")

    def save_launch_data(self) -> ToolMessageLaunch:
        # Only launches that are resumed later need their claims kept: deep linking (the
        # response needs the settings) and platform-storage launches (confirmed by a second
        # request). A resource-link launch keeps what it needs in the database.
        message_type = self._jwt["body"].get(CLAIM + "message_type")
        if message_type == "LtiDeepLinkingRequest" or self.binding == "platform_storage":
            self._session_service.save_launch_data(self._launch_id, self._jwt["body"])
        return self

    # -- results -----------------------------------------------------------------------------

    @property
    def claims(self) -> dict[str, Any]:
        return dict(self._jwt["body"])
