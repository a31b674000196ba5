"""What every page shares: security headers, error pages, CSRF protection, the session."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, has_request_context, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from . import fragments
from .lti import session as lti_session
from .lti.errors import LtiError

log = logging.getLogger(__name__)
csrf = CSRFProtect()

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'"
)


class ToolApp(Flask):
    """Flask, building each URL once per endpoint and arguments.

    A course page links a dozen pages, and Werkzeug builds every URL from its rule (about
    15 µs each, a measurable share of a launch: bench/launch). The URL without the session
    token is the same for every request under the same script root, so it is built once;
    the request's token is added to it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[tuple[Any, ...], str] = {}

    def url_for(
        self,
        endpoint: str,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: Any,
    ) -> str:
        remember = (
            has_request_context()
            and not (_method or _scheme or _external or endpoint.startswith("."))
            and lti_session.TOKEN_PARAM not in values
            # Only our own URL defaults (the token) may apply: others could vary per request.
            and self.url_default_functions.keys() <= {None}
            and self.url_default_functions.get(None, []) == [lti_session.url_defaults]
        )
        if not remember:
            return super().url_for(endpoint, _anchor=_anchor, _method=_method, _scheme=_scheme,
                                   _external=_external, **values)
        try:
            key = (request.script_root, endpoint, _anchor, *sorted(values.items()))
            url = self._urls.get(key)
        except TypeError:  # arguments that cannot be a key
            return super().url_for(endpoint, _anchor=_anchor, **values)
        if url is None:
            with lti_session.plain_urls():
                url = super().url_for(endpoint, _anchor=_anchor, **values)
            if len(self._urls) < 10_000:
                self._urls[key] = url
        return lti_session.add_token(url, endpoint)


def error_page(status: int, title: str, message: str, **extra: object) -> tuple[str, int]:
    return render_template("errors/error.html", title=title, message=message, **extra), status


def init_app(app: Flask) -> None:
    lti_session.init_app(app)
    app.permanent_session_lifetime = app.config["SESSION_MAX_AGE"]
    # Inside an LMS frame the Referer is usually stripped, and the signed session token already
    # binds forms to the session; the CSRF token check itself stays on.
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    fragments.init_app(app)
    static_urls: dict[tuple[str, str], str] = {}

    @app.template_global()
    def static_url(filename: str) -> str:
        """url_for("static", ...) once per file: every page links the same few assets."""
        key = (request.script_root, filename)
        url = static_urls.get(key)
        if url is None:
            url = static_urls[key] = url_for("static", filename=filename)
        return url

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", _CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Session tokens may sit in URLs; never send them to other sites.
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @app.errorhandler(LtiError)
    def _lti_error(exc: LtiError) -> tuple[str, int]:
        log.warning("LTI request refused: %s (%s) %s", exc.code, exc.detail, request.path)
        return error_page(
            exc.status,
            _("The course could not be opened"),
            exc.message,
            code=exc.code,
            new_window_url=getattr(exc, "new_window_url", None),
        )

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> tuple[str, int]:
        log.warning("CSRF check failed: %s %s", exc.description, request.path)
        return error_page(
            400,
            _("This form has expired"),
            _(
                "The form was not accepted because it was out of date or not sent from this "
                "page. Nothing was changed. Please go back, reload the page and try again."
            ),
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int] | HTTPException:
        if exc.code is None or exc.code < 400:
            return exc
        titles = {
            400: _("Bad request"),
            401: _("Please open the course from your LMS"),
            403: _("You do not have access to this page"),
            404: _("Page not found"),
            405: _("Bad request"),
            413: _("Bad request"),
            429: _("Too many requests"),
        }
        messages = {
            400: _("The request could not be understood. Nothing was changed."),
            401: _(
                "Your session has ended or this page was opened outside your LMS. Go back to "
                "your LMS course and open the activity again."
            ),
            403: _("Your role in this LMS course does not give access to this page."),
            404: _("There is nothing at this address."),
            429: _("Please wait a moment and try again."),
        }
        code = exc.code if exc.code < 500 else 500
        if code >= 500:
            log.error("server error on %s: %s", request.path, exc)
            return error_page(500, _("Something went wrong"), _("Please try again in a moment."))
        return error_page(code, titles.get(code, titles[400]), messages.get(code, messages[400]))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[str, int]:
        log.exception("unhandled error on %s", request.path)
        return error_page(500, _("Something went wrong"), _("Please try again in a moment."))
