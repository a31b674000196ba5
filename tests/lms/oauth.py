"""OAuth 2.0 client-credentials token endpoint (LTI Security Framework §4.1) and bearer checks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jwt
from flask import Flask, Request, Response, request

from . import claims as C
from .faults import fault_response
from .keys import ToolKeyError
from .model import TokenRecord
from .web import bearer_token, error, json_response

if TYPE_CHECKING:
    from .server import TestPlatform


class AssertionRejected(Exception):
    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


def verify_tool_jwt(
    lms: TestPlatform, token: str, client_id_hint: str | None = None
) -> tuple[dict[str, Any], str]:
    """Check header and signature of a JWT signed by a registered tool; returns (claims, client_id).

    The issuer picks the registration, so iss must be a known client_id.
    """
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AssertionRejected(400, "invalid_client", f"not a JWT: {exc}") from exc
    if header.get("alg") != "RS256":
        raise AssertionRejected(
            401, "invalid_client", f"alg must be RS256, got {header.get('alg')!r}"
        )
    kid = header.get("kid")
    if not kid:
        raise AssertionRejected(401, "invalid_client", "JWT header has no kid")
    client_id = unverified.get("iss")
    if client_id_hint is not None and client_id != client_id_hint:
        raise AssertionRejected(
            401, "invalid_client", "client_id parameter does not match the assertion iss"
        )
    reg = lms.tools.get(client_id) if isinstance(client_id, str) else None
    if reg is None:
        raise AssertionRejected(
            401, "invalid_client", f"iss {client_id!r} is not a registered client_id"
        )
    try:
        key = lms.tool_keys.find(kid, reg.jwks_url, reg.jwks)
    except ToolKeyError as exc:
        raise AssertionRejected(401, "invalid_client", str(exc)) from exc
    try:
        verified = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={
                "verify_aud": False,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise AssertionRejected(401, "invalid_client", f"signature check failed: {exc}") from exc
    return verified, str(client_id)


def check_times(lms: TestPlatform, claims: dict[str, Any], max_lifetime: int | None) -> None:
    now = time.time()
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise AssertionRejected(400, "invalid_grant", "exp is required (NumericDate)")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool):
        raise AssertionRejected(400, "invalid_grant", "iat is required (NumericDate)")
    if exp <= now - lms.clock_skew:
        raise AssertionRejected(400, "invalid_grant", "the JWT has expired")
    if iat > now + lms.clock_skew:
        raise AssertionRejected(400, "invalid_grant", "iat is in the future")
    if max_lifetime is not None and exp > now + max_lifetime + lms.clock_skew:
        raise AssertionRejected(
            400, "invalid_grant", f"exp is more than {max_lifetime}s in the future"
        )
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf > now + lms.clock_skew:
        raise AssertionRejected(400, "invalid_grant", "nbf is in the future")


def _issue(lms: TestPlatform, form: Any) -> Response:
    if form.get("grant_type") != "client_credentials":
        raise AssertionRejected(
            400, "unsupported_grant_type", "grant_type must be client_credentials"
        )
    if form.get("client_assertion_type") != C.CLIENT_ASSERTION_TYPE:
        raise AssertionRejected(
            400, "invalid_request", f"client_assertion_type must be {C.CLIENT_ASSERTION_TYPE}"
        )
    assertion = form.get("client_assertion")
    if not assertion:
        raise AssertionRejected(400, "invalid_request", "client_assertion is required")
    claims, client_id = verify_tool_jwt(lms, assertion, form.get("client_id"))
    if claims.get("sub") != client_id:
        raise AssertionRejected(401, "invalid_client", "sub must equal iss (the client_id)")
    expected_aud = lms.expected_token_audience(client_id)
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if expected_aud not in auds:
        raise AssertionRejected(
            400, "invalid_grant", f"aud must contain {expected_aud!r}, got {aud!r}"
        )
    check_times(lms, claims, lms.assertion_max_lifetime)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise AssertionRejected(400, "invalid_grant", "jti is required")
    with lms.lock:
        if (client_id, jti) in lms.seen_jtis:
            raise AssertionRejected(
                400, "invalid_grant", "jti was already used (replayed client assertion)"
            )
        lms.seen_jtis.add((client_id, jti))
    scope_param = form.get("scope", "")
    requested = [s for s in scope_param.split(" ") if s]
    if not requested:
        raise AssertionRejected(400, "invalid_scope", "scope is required")
    granted = lms.tools[client_id].scopes
    refused = [s for s in requested if s not in granted]
    if refused:
        raise AssertionRejected(400, "invalid_scope", f"scopes not granted to this tool: {refused}")
    token = lms.new_secret("at")
    with lms.lock:
        lms.tokens[token] = TokenRecord(
            token, client_id, requested, time.time() + lms.token_lifetime
        )
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lms.token_lifetime,
        "scope": " ".join(requested),
    }
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def guard(
    lms: TestPlatform, req: Request, endpoint: str, any_of: Sequence[str]
) -> tuple[TokenRecord | None, Response | None]:
    """Bearer check (RFC 6750), then fault injection: (token, None) or (None, error response)."""
    realm = 'Bearer realm="lms"'
    token = bearer_token(req)
    if token is None:
        return None, error(
            401, "invalid_request", "missing bearer token", {"WWW-Authenticate": realm}
        )
    with lms.lock:
        record = lms.tokens.get(token)
    if record is None or not record.valid():
        return None, error(
            401,
            "invalid_token",
            "unknown or expired access token",
            {"WWW-Authenticate": f'{realm}, error="invalid_token"'},
        )
    if not any(s in record.scopes for s in any_of):
        needed = " ".join(any_of)
        return None, error(
            403,
            "insufficient_scope",
            f"token lacks scope {needed}",
            {"WWW-Authenticate": f'{realm}, error="insufficient_scope", scope="{needed}"'},
        )
    fault = lms.faults.take(endpoint, req.path)
    if fault is not None:
        if fault.kind == "401":
            record.revoked = True
        resp = fault_response(fault)
        if resp is not None:
            return None, resp
    return record, None


def register(app: Flask, lms: TestPlatform) -> None:
    @app.post("/oauth/token")
    def oauth_token() -> Response:
        with lms.lock:
            lms.token_requests += 1
        fault = lms.faults.take("token", request.path)
        if fault is not None:
            resp = fault_response(fault)
            if resp is not None:
                return resp
        if (request.mimetype or "") != "application/x-www-form-urlencoded":
            lms.token_errors.append("content type")
            return error(
                400,
                "invalid_request",
                "the token request must be application/x-www-form-urlencoded",
            )
        try:
            return _issue(lms, request.form)
        except AssertionRejected as exc:
            lms.token_errors.append(exc.description)
            headers = {"WWW-Authenticate": 'Bearer realm="lms"'} if exc.status == 401 else None
            return error(exc.status, exc.code, exc.description, headers)
