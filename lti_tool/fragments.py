"""`{% fragment key, ... %}…{% endfragment %}`: parts of pages rendered once and remembered.

Every course page repeats the same header and navigation; only the session token in their
URLs and the CSRF token in their forms differ between learners. Rendering them again for each
page was a large share of a launch (bench/launch). A fragment is rendered once per key (plus
the script root and whether URLs carry the session token) with placeholders for the two
tokens, kept in memory, and filled in with the request's tokens on every use.

The key must name everything else the fragment's output depends on (language, role, path…):
what is not in the key is frozen at the first rendering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, g, request, session
from flask_wtf.csrf import generate_csrf
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from .lti import session as lti_session

log = logging.getLogger(__name__)
CSRF_PLACEHOLDER = "\x00csrf\x00"
MAX_FRAGMENTS = 5000  # a bound, not an expectation: keys are languages × pages × roles


def csrf_token() -> str:
    """The template's `csrf_token()`: Flask-WTF's, or a placeholder inside a fragment."""
    if lti_session.placeholders_active():
        return CSRF_PLACEHOLDER
    return str(generate_csrf())


def _fill(html: str) -> str:
    if lti_session.TOKEN_PLACEHOLDER in html:
        html = html.replace(lti_session.TOKEN_PLACEHOLDER, lti_session.current_token())
    if CSRF_PLACEHOLDER in html:
        html = html.replace(CSRF_PLACEHOLDER, str(generate_csrf()))
    return html


class FragmentCache(Extension):
    tags = {"fragment"}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.fragments: dict[tuple[Any, ...], str] = {}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        key = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            key.append(parser.parse_expression())
        body = parser.parse_statements(("name:endfragment",), drop_needle=True)
        call = self.call_method("_render", [nodes.Tuple(key, "load")])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _render(self, key: tuple[Any, ...], caller: Callable[[], str]) -> Markup:
        full_key = (key, request.script_root, lti_session.carries_token())
        try:
            html = self.fragments.get(full_key)
        except TypeError:
            # A key with a list or dict in it cannot be remembered: render as if no fragment.
            log.error("fragment key %r is not hashable; rendered without remembering", key)
            return Markup(caller())  # noqa: S704  (rendered by our autoescaping templates)
        if html is None:
            with lti_session.placeholder_token():
                html = str(caller())
            if _leaks_secrets(html):
                log.error("fragment %r shows this session's tokens; not remembered", key)
            else:
                if len(self.fragments) >= MAX_FRAGMENTS:
                    self.fragments.clear()
                self.fragments[full_key] = html
        return Markup(_fill(html))  # noqa: S704  (rendered by our autoescaping templates)


def _leaks_secrets(html: str) -> bool:
    """Whether a fragment shows a token of this session (a helper that ignored the
    placeholders): remembered, it would hand one learner's tokens to every other."""
    secrets = [session.get("csrf_token"), g.get("csrf_token")]
    if lti_session.carries_token():
        secrets.append(lti_session.current_token())
    return any(isinstance(v, str) and len(v) >= 16 and v in html for v in secrets)


def init_app(app: Flask) -> None:
    """After CSRFProtect.init_app: ours replaces Flask-WTF's template `csrf_token` (a global
    and a context processor), so that inside a fragment it is a placeholder."""
    app.jinja_env.add_extension(FragmentCache)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.context_processor(lambda: {"csrf_token": csrf_token})
