"""The tool's session inside an LMS frame, with or without third-party cookies.

The session is Flask's signed session. It travels in a cookie (`SameSite=None; Secure;
Partitioned` over HTTPS, so it survives third-party-cookie blocking in browsers with CHIPS) and,
as a fallback, as a signed token `lt` in the URLs and forms the tool generates. The token carries
the launch's identity, never the id_token. Because each frame carries its own token, two LMS tabs
with two launches never overwrite each other's session, and a new launch always re-binds it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, has_request_context, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

TOKEN_PARAM = "lt"  # noqa: S105  (a parameter name, not a secret)
# Endpoints that never need the session in their URL (public, static, or LTI entry points).
_NO_TOKEN_ENDPOINTS = {"static", "lti.jwks", "lti.config_json", "lti.login", "lti.launch"}


class LaunchSession(SecureCookieSession):
    via_url = False
    # (contents, token): a page has many links, and signing the same contents again for each
    # of them was a measurable share of a page's time (bench/launch).
    token_memo: tuple[dict[str, Any], str] | None = None


class _SessionSerializer(URLSafeTimedSerializer):
    """Signs the session once per request and content.

    The session cookie and the `lt` token are the same signed string; a launch or a page
    would otherwise sign it twice (once for its links, once for the cookie).
    """

    def dumps(self, obj: Any, salt: Any = None) -> Any:
        if salt is None and has_request_context():
            memo = getattr(session, "token_memo", None)
            if memo is not None and memo[0] == obj:
                return memo[1]
        return super().dumps(obj, salt)


class LaunchSessionInterface(SecureCookieSessionInterface):
    session_class = LaunchSession

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Built once per key set instead of once per request (and per link, for `lt`).
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        found = self._serializers.get(keys)
        if found is None:
            found = self._serializers[keys] = _SessionSerializer(
                list(keys),  # itsdangerous expects the current key last
                salt=self.salt,
                serializer=self.serializer,
                signer_kwargs={
                    "key_derivation": self.key_derivation,
                    "digest_method": self.digest_method,
                },
            )
        return found

    def open_session(self, app: Flask, request: Any) -> LaunchSession | None:
        token = request.args.get(TOKEN_PARAM)
        if (
            token is None
            and request.method == "POST"
            and request.mimetype
            in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            )
        ):
            token = request.form.get(TOKEN_PARAM)
        if token:
            serializer = self.get_signing_serializer(app)
            if serializer is not None:
                try:
                    data = serializer.loads(
                        token, max_age=int(app.permanent_session_lifetime.total_seconds())
                    )
                except BadSignature:
                    data = None
                if isinstance(data, dict):
                    sess = LaunchSession(data)
                    sess.via_url = True
                    sess.token_memo = (dict(data), token)
                    return sess
            return LaunchSession()
        return super().open_session(app, request)  # type: ignore[return-value]

    # Cookie attributes follow the request: a cross-site frame needs SameSite=None, which
    # browsers accept only with Secure, so plain-http development gets Lax cookies instead.
    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)

    def get_cookie_samesite(self, app: Flask) -> str:
        return "None" if request.is_secure else "Lax"

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return bool(request.is_secure)


def session_token(app: Flask, data: dict[str, Any]) -> str:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return str(serializer.dumps(dict(data)))


def current_token() -> str:
    """The signed token for the session as it is now, signed once per distinct content."""
    from flask import current_app

    data = dict(session)
    memo = getattr(session, "token_memo", None)
    if memo is not None and memo[0] == data:
        return memo[1]
    token = session_token(current_app, data)
    if isinstance(session, LaunchSession):
        session.token_memo = (data, token)
    return token


def carry_token_in_urls() -> None:
    """From now on, URLs this request generates carry the session token."""
    g.session_in_urls = True


def _add_token(endpoint: str, values: dict[str, Any]) -> None:
    if endpoint in _NO_TOKEN_ENDPOINTS or TOKEN_PARAM in values:
        return
    carrying = g.get("session_in_urls") or getattr(session, "via_url", False)
    if carrying and session:
        values[TOKEN_PARAM] = current_token()


def init_app(app: Flask) -> None:
    app.session_interface = LaunchSessionInterface()
    app.url_defaults(_add_token)

    @app.context_processor
    def _token_field() -> dict[str, Any]:
        def session_field() -> str:
            """Hidden form field for forms posted without cookies."""
            from markupsafe import Markup

            if not session or not (g.get("session_in_urls") or getattr(session, "via_url", False)):
                return Markup("")
            return Markup('<input type="hidden" name="{}" value="{}">').format(
                TOKEN_PARAM, current_token()
            )

        return {"session_field": session_field}
