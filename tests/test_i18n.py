"""Languages: negotiation from the launch, the switcher, and complete catalogs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from lti_tool.i18n import negotiate

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("de-DE", "de"),
        ("de-AT", "de"),
        ("de_CH", "de"),
        ("es-ES", "es"),
        ("es-MX", "es"),
        ("es-419", "es"),
        ("en-GB", "en"),
        ("EN", "en"),
        ("fr-FR", None),
        ("", None),
        (None, None),
        ("x", None),
    ],
)
def test_negotiate(tag, lang):
    assert negotiate(tag) == lang


@pytest.mark.parametrize(
    ("locale", "lang", "phrase"),
    [
        ("de-DE", "de", "Willkommen, Ana García"),
        ("de-AT", "de", "Sprache ändern"),
        ("es-ES", "es", "Te damos la bienvenida, Ana García"),
        ("es-MX", "es", "Cambiar idioma"),
        ("fr-FR", "en", "Welcome, Ana García"),
    ],
)
def test_launch_locale_picks_the_course_language(env, locale, lang, phrase):
    resp = env.launch("learner-1", locale=locale)
    assert resp.status_code == 200
    assert f'<html lang="{lang}">' in resp.text
    assert phrase in resp.text


def test_language_switcher_persists_for_the_user(env):
    b = env.browser()
    home = env.launch("learner-1", browser=b, locale="en-US")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="lt" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    resp = b.post(
        env.tool.url + "/language",
        data={"language": "es", "next": "/course/", "csrf_token": csrf, "lt": token},
    )
    assert resp.status_code == 200
    assert '<html lang="es">' in resp.text
    # A later launch with an English LMS locale keeps the learner's choice.
    again = env.launch("learner-1", locale="en-US")
    assert '<html lang="es">' in again.text


def test_language_switch_without_csrf_token_changes_nothing(env):
    b = env.browser()
    home = env.launch("learner-1", browser=b)
    token = re.search(r'name="lt" value="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    resp = b.post(env.tool.url + "/language", data={"language": "de", "lt": token})
    assert resp.status_code == 400
    assert "This form has expired" in resp.text
    assert '<html lang="en">' in env.launch("learner-1").text


def test_error_pages_follow_the_browser_language_without_a_session(app):
    client = app.test_client()
    resp = client.get("/course/", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert resp.status_code == 401
    assert '<html lang="de">' in resp.text and "Bitte öffne den Kurs" in resp.text
    resp = client.get("/nowhere", headers={"Accept-Language": "es"})
    assert resp.status_code == 404 and "Página no encontrada" in resp.text


@pytest.fixture(scope="module")
def fresh_template(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Extract from the source now: a stale messages.pot must not hide a new string."""
    import subprocess
    import sys

    root = TRANSLATIONS.parent
    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(out),
            ".",
        ],
        cwd=root,
        check=True,
        capture_output=True,
    )
    with out.open("rb") as fh:
        return read_po(fh)


@pytest.mark.parametrize("lang", ["de", "es"])
def test_catalog_is_complete_without_fuzzy_entries_and_with_matching_placeholders(
    lang, fresh_template
):
    template = fresh_template
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    problems = []
    for msg in template:
        if not msg.id:
            continue
        entry = catalog.get(msg.id)
        if entry is None:
            problems.append(f"missing: {msg.id!r}")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy: {msg.id!r}")
        ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(strings):
            problems.append(f"untranslated: {msg.id!r}")
            continue
        want = sorted(PLACEHOLDER.findall(ids[-1]))
        for s in strings:
            if sorted(PLACEHOLDER.findall(s)) != want:
                problems.append(f"placeholders differ: {msg.id!r} -> {s!r}")
    assert not problems, "\n".join(problems)
