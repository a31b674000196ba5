"""Page fragments rendered once for everyone (lti_tool/fragments.py) must never carry one
learner's tokens to another, and must follow what their key names."""

from __future__ import annotations

import logging
import re

from flask import session

from lti_tool.fragments import FragmentCache
from lti_tool.lti.session import TOKEN_PLACEHOLDER
from tests.admin_helpers import csrf_token, session_token
from tests.conftest import landed_url


def _switch(env, browser, page, language, csrf=None, lt=None):  # type: ignore[no-untyped-def]
    return browser.post(
        env.tool.url + "/language",
        {"language": language, "next": "/course/", "csrf_token": csrf or csrf_token(page),
         "lt": lt or session_token(page) or ""},
    )


def test_two_learners_get_the_same_header_with_their_own_tokens(env):
    b1, b2 = env.browser(), env.browser()
    p1 = env.launch("learner-1", browser=b1)
    p2 = env.launch("learner-2", browser=b2)  # the header comes from the fragment cache now
    assert p1.status_code == p2.status_code == 200
    assert csrf_token(p1) != csrf_token(p2)
    assert session_token(p1) != session_token(p2)
    for page in (p1, p2):
        assert "\x00" not in page.text  # every placeholder filled in
        # The token in the header's URLs is the one of the page's own session.
        tokens = set(re.findall(r"[?&]lt=([^\"&#]+)", page.text))
        assert tokens == {session_token(page)}, tokens
    # Each learner's form works in their own session only.
    assert _switch(env, b2, p2, "de", csrf=csrf_token(p1)).status_code == 400
    switched = _switch(env, b2, p2, "de")
    assert switched.status_code == 200 and '<html lang="de">' in switched.text
    assert _switch(env, b1, p1, "es").status_code == 200


def test_the_key_decides_what_is_shared(env):
    b = env.browser()
    en = env.launch("learner-1", browser=b)
    de = env.launch("learner-2", locale="de-DE")
    assert 'value="en" lang="en" selected' in en.text
    assert 'value="de" lang="de" selected' in de.text  # the language is in the key
    assert "Sprache" in de.text and "Language" in en.text
    # Pages at other addresses return there after switching language (the path is in the key).
    records = b.get(env.tool.url + "/record/?lt=" + session_token(en))
    assert 'name="next" value="/record/"' in records.text
    assert 'name="next" value="/course/"' in en.text
    assert landed_url(en).split("?")[0].endswith("/course/")


def test_a_fragment_showing_a_real_token_is_not_remembered(env, caplog):
    env.launch("learner-1")  # the app has its schema and keys
    app = env.app
    ext = next(e for e in app.jinja_env.extensions.values() if isinstance(e, FragmentCache))
    leaky = app.jinja_env.from_string(
        '{% fragment "leaky" %}<input value="{{ session["csrf_token"] }}">{% endfragment %}'
    )
    safe = app.jinja_env.from_string(
        '{% fragment "safe" %}<input value="{{ csrf_token() }}">{% endfragment %}'
    )
    with app.test_request_context("/course/"), caplog.at_level(logging.ERROR):
        session["csrf_token"] = "a" * 40
        session["iid"] = 1
        ctx: dict[str, object] = {}
        app.update_template_context(ctx)
        assert "a" * 40 in leaky.render(ctx)
        assert not any(k[0] == ("leaky",) for k in ext.fragments)
        assert "not remembered" in caplog.text
        out = safe.render(ctx)
        assert any(k[0] == ("safe",) for k in ext.fragments)
        stored = next(v for k, v in ext.fragments.items() if k[0] == ("safe",))
        assert "\x00csrf\x00" in stored and "\x00csrf\x00" not in out
        assert TOKEN_PLACEHOLDER not in out


def test_a_fragment_inside_another_keeps_the_outer_one_shareable(env):
    """The inner fragment's first rendering must not switch the placeholders off for the rest
    of the outer one (which would then show this session's token and not be remembered)."""
    env.launch("learner-1")
    app = env.app
    ext = next(e for e in app.jinja_env.extensions.values() if isinstance(e, FragmentCache))
    nested = app.jinja_env.from_string(
        '{% fragment "outer" %}{% fragment "inner" %}a{% endfragment %}'
        '<a href="{{ url_for("course.home") }}">{% endfragment %}'
    )
    with app.test_request_context("/course/"):
        session["iid"], session["ctx"] = 1, None
        from lti_tool.lti.session import carry_token_in_urls, current_token

        carry_token_in_urls()
        ctx: dict[str, object] = {}
        app.update_template_context(ctx)
        out = nested.render(ctx)
        assert "lt=" + current_token() in out
        stored = next(v for k, v in ext.fragments.items() if k[0] == ("outer",))
        assert TOKEN_PLACEHOLDER in stored and current_token() not in stored


def test_a_key_that_cannot_be_remembered_renders_the_fragment_each_time(env, caplog):
    env.launch("learner-1")
    app = env.app
    ext = next(e for e in app.jinja_env.extensions.values() if isinstance(e, FragmentCache))
    listed = app.jinja_env.from_string(
        '{% fragment "listed", ["a", "b"] %}<a href="{{ url_for("course.home") }}">'
        '<input value="{{ csrf_token() }}">{% endfragment %}'
    )
    with app.test_request_context("/course/"), caplog.at_level(logging.ERROR):
        session["iid"], session["ctx"] = 1, None
        from lti_tool.lti.session import carry_token_in_urls

        carry_token_in_urls()
        ctx: dict[str, object] = {}
        app.update_template_context(ctx)
        out = listed.render(ctx)
        # This request's own tokens, no placeholders; nothing remembered, no error page.
        assert "/course/?lt=ey" in out and TOKEN_PLACEHOLDER not in out
        assert "\x00csrf\x00" not in out and 'value=""' not in out
        assert not any(k[0][0] == "listed" for k in ext.fragments)
        assert "not hashable" in caplog.text
