"""The tool's session inside an LMS frame, with or without third-party cookies.

The session is Flask's signed session. It travels in a cookie (`SameSite=None; Secure;
Partitioned` over HTTPS, so it survives third-party-cookie blocking in browsers with CHIPS) and,
as a fallback, as a signed token `lt` in the URLs and forms the tool generates. The token carries
the launch's identity, never the id_token. Because each frame carries its own token, two LMS tabs
with two launches never overwrite each other's session, and a new launch always re-binds it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from flask import Flask, g, has_request_context, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

TOKEN_PARAM = "lt"  # noqa: S105  (a parameter name, not a secret)
# Stands for the token in page fragments rendered once for every session (lti_tool.fragments).
TOKEN_PLACEHOLDER = "\x00lt\x00"  # noqa: S105
# Endpoints that never need the session in their URL (public, static, or LTI entry points).
_NO_TOKEN_ENDPOINTS = {"static", "lti.jwks", "lti.config_json", "lti.login", "lti.launch"}


class LaunchSession(SecureCookieSession):
    via_url = False

    def __init__(self, initial: Any = None) -> None:
        super().__init__(initial)
        # Counts changes, so that the signed token can be kept until the contents change: a
        # page has many links, and signing (or even comparing) the contents for each of them
        # was a measurable share of a page's time (bench/launch).
        self.version = 0
        self.token_memo: tuple[int, str] | None = None  # (version, token)

        def on_update(sess: LaunchSession) -> None:
            sess.modified = True
            sess.version += 1

        self.on_update = on_update


class _SessionSerializer(URLSafeTimedSerializer):
    """Signs the session once per request and content.

    The session cookie and the `lt` token are the same signed string; a launch or a page
    would otherwise sign it twice (once for its links, once for the cookie).
    """

    def dumps(self, obj: Any, salt: Any = None) -> Any:
        if salt is None and has_request_context():
            sess = session._get_current_object()  # type: ignore[attr-defined]
            memo = getattr(sess, "token_memo", None)
            if memo is not None and memo[0] == sess.version and obj == sess:
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
                    sess.token_memo = (sess.version, token)
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

    if placeholders_active():
        return TOKEN_PLACEHOLDER
    sess = session._get_current_object()  # type: ignore[attr-defined]
    memo = getattr(sess, "token_memo", None)
    if memo is not None and memo[0] == sess.version:
        return memo[1]
    token = session_token(current_app, dict(sess))
    if isinstance(sess, LaunchSession):
        sess.token_memo = (sess.version, token)
    return token


def carry_token_in_urls() -> None:
    """From now on, URLs this request generates carry the session token."""
    g.session_in_urls = True


def carries_token() -> bool:
    """Whether this request's URLs and forms carry the session token."""
    carrying = g.get("session_in_urls") or getattr(session, "via_url", False)
    return bool(carrying and session)


def url_token(endpoint: str) -> str | None:
    """The token the URL of `endpoint` must carry in this request, if any."""
    if endpoint in _NO_TOKEN_ENDPOINTS or g.get("_plain_urls"):
        return None
    return current_token() if carries_token() else None


def add_token(url: str, endpoint: str) -> str:
    """`url` (built without the token) with the session token, before any #fragment."""
    token = url_token(endpoint)
    if token is None:
        return url
    base, hash_, fragment = url.partition("#")
    return f"{base}{'&' if '?' in base else '?'}{TOKEN_PARAM}={token}{hash_}{fragment}"


@contextlib.contextmanager
def _flag(name: str) -> Iterator[None]:
    """Set g.<name> meanwhile, restoring what it was (fragments may nest)."""
    before = g.get(name, False)
    setattr(g, name, True)
    try:
        yield
    finally:
        setattr(g, name, before)


def placeholder_token() -> contextlib.AbstractContextManager[None]:
    """Meanwhile the token is TOKEN_PLACEHOLDER, for output shared by every session."""
    return _flag("_token_placeholder")


def placeholders_active() -> bool:
    return bool(g.get("_token_placeholder"))


def plain_urls() -> contextlib.AbstractContextManager[None]:
    """URLs built meanwhile carry no token (they are remembered for every session)."""
    return _flag("_plain_urls")


def url_defaults(endpoint: str, values: dict[str, Any]) -> None:
    """Flask URL defaults: the session token, where the URL needs one."""
    if TOKEN_PARAM in values:
        return
    token = url_token(endpoint)
    if token is not None:
        values[TOKEN_PARAM] = token


def init_app(app: Flask) -> None:
    app.session_interface = LaunchSessionInterface()
    app.url_defaults(url_defaults)

    @app.context_processor
    def _token_field() -> dict[str, Any]:
        def session_field() -> str:
            """Hidden form field for forms posted without cookies."""
            from markupsafe import Markup

            if not carries_token():
                return Markup("")
            return Markup('<input type="hidden" name="{}" value="{}">').format(
                TOKEN_PARAM, current_token()
            )

        return {"session_field": session_field}
