"""Languages: English, German and Spanish, negotiated from the launch, the user or the browser."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from decimal import Decimal

import flask_babel
from babel import numbers as babel_numbers
from babel.support import NullTranslations
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask.sansio.app import App
from flask_babel import Babel
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from werkzeug.wrappers import Response

LANGUAGES = ("en", "de", "es")
DEFAULT = "en"
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "es": "Español"}
_POLICY = "lti_tool.i18n.policy"

# (languages the session may use, the language to fall back to), or None: no restriction.
LanguagePolicy = Callable[[], tuple[Sequence[str], str] | None]

bp = Blueprint("i18n", __name__)


def negotiate(tag: str | None) -> str | None:
    """Map a BCP 47 tag to one of our languages: de-AT → de, es-MX → es; None if no match."""
    if not tag:
        return None
    primary = tag.replace("_", "-").split("-", 1)[0].strip().lower()
    return primary if primary in LANGUAGES else None


def set_language_policy(app: App, policy: LanguagePolicy) -> None:
    """Let another package narrow the languages of a session (e.g. per LMS course)."""
    app.extensions[_POLICY] = policy


def allowed_languages() -> tuple[tuple[str, ...], str]:
    """The languages this session may use, in our order, and the one to fall back to.

    Asked once per request and session (the policy may read the database).
    """
    if not has_request_context():
        return LANGUAGES, DEFAULT
    key = (session.get("iid"), session.get("ctx"))
    cached = g.get("allowed_languages")
    if cached is not None and cached[0] == key:
        return cached[1]
    policy: LanguagePolicy | None = current_app.extensions.get(_POLICY)
    narrowed = policy() if policy is not None else None
    allowed: tuple[str, ...] = LANGUAGES
    fallback = DEFAULT
    if narrowed is not None:
        allowed = tuple(lang for lang in LANGUAGES if lang in narrowed[0]) or LANGUAGES
        fallback = narrowed[1] if narrowed[1] in allowed else allowed[0]
    g.allowed_languages = (key, (allowed, fallback))
    return allowed, fallback


def current_language() -> str:
    if not has_request_context():
        return str(g.get("lang_hint") or DEFAULT)
    hint = g.get("lang_hint")
    if hint in LANGUAGES:
        return str(hint)
    allowed, fallback = allowed_languages()
    lang = session.get("lang") if session else None
    if lang in allowed:
        return str(lang)
    if lang in LANGUAGES:
        return fallback  # chosen or sent by the LMS, but not offered in this course
    return request.accept_languages.best_match(allowed) or fallback


def translations() -> NullTranslations:
    """The request's catalog, found once per request and locale.

    Flask-Babel finds it again for every string (several context lookups and a locale turned
    into a string each time), and a course page translates dozens (bench/launch). Keyed by
    the locale object Flask-Babel chose, so `force_locale` and `refresh` are honoured.
    """
    if not has_request_context():
        return flask_babel.get_translations()
    state = g.get("_flask_babel")
    locale = getattr(state, "babel_locale", None)
    cached = g.get("_catalog")
    if locale is not None and cached is not None and cached[0] is locale:
        return cached[1]
    catalog = flask_babel.get_translations()
    g._catalog = (getattr(g.get("_flask_babel"), "babel_locale", None), catalog)
    return catalog


def gettext(string: str, **variables: object) -> str:
    """flask_babel.gettext through the request's catalog."""
    text = translations().ugettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: object) -> str:
    """flask_babel.ngettext through the request's catalog."""
    variables.setdefault("num", num)
    return translations().ungettext(singular, plural, num) % variables


def template_translators() -> dict[str, Callable[..., str]]:
    """`_`, `gettext` and `ngettext` for one render, bound to the request's catalog.

    Passed in a render's context they shadow the i18n extension's globals, which resolve
    `gettext` and find the catalog again for every string; the escaping is the same
    (Jinja's "newstyle" gettext: the translation is Markup, the values are escaped into it).
    """
    catalog = translations()
    ugettext, ungettext = catalog.ugettext, catalog.ungettext

    # Catalog strings are the tool's own, trusted as markup like Jinja's newstyle gettext does;
    # the values filled in are escaped by Markup's `%`.
    @pass_context
    def gettext_(context: Context, string: str, **variables: object) -> str:
        text = ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704
        return text % variables

    @pass_context
    def ngettext_(
        context: Context, singular: str, plural: str, num: int, **variables: object
    ) -> str:
        variables.setdefault("num", num)
        text = ungettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704
        return text % variables

    return {"_": gettext_, "gettext": gettext_, "ngettext": ngettext_}


def format_decimal(number: float | Decimal | str) -> str:
    """flask_babel.format_decimal, remembered per locale and value: pages show the same few
    counts and CEC amounts over and over, and Babel's formatting is slow."""
    locale = flask_babel.get_locale()
    key = (locale, number)
    text = _DECIMALS.get(key)
    if text is None:
        text = babel_numbers.format_decimal(number, locale=locale)
        if len(_DECIMALS) < 10_000:
            _DECIMALS[key] = text
    return text


_DECIMALS: dict[tuple[object, object], str] = {}


def refresh() -> None:
    """After the session's language changed within a request (a launch binds a new one)."""
    flask_babel.refresh()
    g.pop("_catalog", None)


def compile_catalogs(directory: object) -> None:
    """Build missing or stale .mo files from the .po catalogs at start-up."""
    from pathlib import Path

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in Path(str(directory)).glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parent.parent.name)
        tmp = mo.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            write_mo(fh, catalog)
        os.replace(tmp, mo)  # atomic: several workers may compile at once


def init_app(app: Flask) -> None:
    directory = _translations_dir()
    compile_catalogs(directory)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(directory))
    Babel(app, locale_selector=current_language)
    # Templates translate through the request's catalog (see `translations`).
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.register_blueprint(bp)

    @app.context_processor
    def _languages() -> dict[str, object]:
        return {
            "LANGUAGES": LANGUAGES,
            "LANGUAGE_NAMES": LANGUAGE_NAMES,
            "current_language": current_language,
            # Once per render: the page asks for it in several places.
            "page_lang": current_language(),
            # What the switcher offers: a function, so that pages without one ask nothing.
            "language_choices": lambda: allowed_languages()[0],
        }


def _translations_dir() -> object:
    from pathlib import Path

    # Installed as a package or run from the checkout, the catalogs live at the project root.
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "translations", here / "translations"):
        if candidate.is_dir():
            return candidate
    return here.parent / "translations"


@bp.post("/language")
def switch_language() -> Response:
    """Remember the learner's language for this session and, once launched, for good."""
    lang = request.form.get("language", "")
    if lang not in allowed_languages()[0]:
        abort(400)
    session["lang"] = lang
    instructor_id = session.get("iid")
    if instructor_id:
        from . import db
        from .identity.models import Instructor

        s = db.session()
        inst = s.get(Instructor, instructor_id)
        if inst is not None:
            inst.preferred_language = lang
            s.commit()
    target = request.form.get("next") or ""
    # Only a path on this site; an absolute URL here would be an open redirect.
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("course.home")
    from .lti.session import TOKEN_PARAM, current_token

    if getattr(session, "via_url", False):
        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        parts = urlsplit(target)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != TOKEN_PARAM]
        query.append((TOKEN_PARAM, current_token()))
        target = urlunsplit(("", "", parts.path, urlencode(query), ""))
    return redirect(target, code=303)
