"""Learners never reach course administration: a crawl of every registered route as a learner.

Every route of the admin and deep-linking blueprints (and any route under /admin or
/deep-link, whoever registers it) must answer a learner with the translated 403 page, also for
POSTs that carry the learner's own valid CSRF token, and must change nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from werkzeug.routing import Rule

from lti_tool.admin import AuditEntry, CourseConfig
from tests.admin_helpers import csrf_token, query, session_token, use_course

ADMIN_BLUEPRINTS = ("admin", "deeplink")
ADMIN_PREFIXES = ("/admin", "/deep-link")
FORBIDDEN = {
    "de": "Du hast keinen Zugriff auf diese Seite",
    "es": "No tienes acceso a esta página",
    "en": "You do not have access to this page",
}


def admin_rules(app: Any) -> list[Rule]:
    return [
        r for r in app.url_map.iter_rules()
        if r.endpoint.split(".")[0] in ADMIN_BLUEPRINTS or r.rule.startswith(ADMIN_PREFIXES)
    ]


def url_for_rule(rule: Rule) -> str:
    values = {}
    for arg in rule.arguments:
        conv = rule._converters[arg]  # type: ignore[attr-defined]
        values[arg] = 1 if type(conv).__name__ == "IntegerConverter" else "x"
    _, path = rule.build(values)  # type: ignore[misc]
    return path


@pytest.fixture
def course(env):  # type: ignore[no-untyped-def]
    return use_course(env.app)


def test_the_crawl_covers_every_admin_route(env, course):
    endpoints = {r.endpoint for r in admin_rules(env.app)}
    expected = {
        "admin.home", "admin.modules", "admin.learners", "admin.learners_csv",
        "admin.resend_learner", "admin.resend_all", "admin.audit_log", "deeplink.picker",
    }
    assert expected <= endpoints


@pytest.mark.parametrize(("locale", "lang"), [("de-DE", "de"), ("es-MX", "es"), ("en-GB", "en")])
def test_every_admin_route_refuses_learners_in_their_language(env, course, locale, lang):
    b = env.browser()
    home = env.launch("learner-1", browser=b, locale=locale)
    assert home.status_code == 200
    assert f'<html lang="{lang}">' in home.text
    token = csrf_token(home)
    lt = session_token(home)
    crawled = 0
    for rule in admin_rules(env.app):
        path = url_for_rule(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            url = env.tool.url + path
            if method == "GET":
                resp = b.get(url)
            else:
                # A valid token of the learner's own session: only the role check may refuse.
                data = {"csrf_token": token, "action": "place", "item": "course",
                        "pass_mark_percent": "50"}
                if lt:
                    data["lt"] = lt
                resp = b.post(url, data)
            assert resp.status_code == 403, (method, path, resp.status_code)
            assert f'<html lang="{lang}">' in resp.text, (method, path)
            assert FORBIDDEN[lang] in resp.text, (method, path)
            crawled += 1
    assert crawled >= 10
    assert query(env.app, lambda s: s.query(AuditEntry).count()) == 0
    assert query(env.app, lambda s: s.query(CourseConfig).count()) == 0


def test_also_through_the_url_session_token(env, course):
    """Inside an LMS frame without cookies the session travels as `lt`: same refusal."""
    b = env.browser()
    home = env.launch("learner-1", browser=b)
    lt = session_token(home)
    assert lt
    fresh = env.browser()  # no cookies at all
    for rule in admin_rules(env.app):
        if "GET" in (rule.methods or set()):
            resp = fresh.get(env.tool.url + url_for_rule(rule) + "?lt=" + lt)
            assert resp.status_code == 403, rule.rule


def test_without_a_launch_admin_routes_answer_401(env, course):
    b = env.browser()
    for rule in admin_rules(env.app):
        if "GET" in (rule.methods or set()):
            assert b.get(env.tool.url + url_for_rule(rule)).status_code == 401, rule.rule


def test_learners_see_no_way_into_administration(env, course):
    home = env.launch("learner-1")
    assert "/admin/" not in home.text
    assert "Course administration" not in home.text
    teacher = env.launch("teacher-1")
    assert re.search(r'href="/admin/\?lt=[^"]+"', teacher.text)


def test_operator_pages_stay_closed_to_learners(env, course):
    b = env.browser()
    home = env.launch("learner-1", browser=b)
    token = csrf_token(home)
    operator_rules = [r for r in env.app.url_map.iter_rules() if r.endpoint.startswith("operator.")]
    assert operator_rules
    for rule in operator_rules:  # off: no operator password configured
        assert b.get(env.tool.url + url_for_rule(rule)).status_code in (404, 405)
    from werkzeug.security import generate_password_hash

    env.app.config["OPERATOR_PASSWORD_HASH"] = generate_password_hash("operator secret 42")
    for rule in operator_rules:
        path = url_for_rule(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method == "GET":
                resp = b.get(env.tool.url + path, follow_redirects=False)
            else:
                resp = b.post(env.tool.url + path, {"csrf_token": token, "active": "0"})
            if rule.endpoint == "operator.login":
                continue  # the sign-in form is public by design
            if method == "GET":
                assert resp.status_code == 303, (method, path)
                assert "/operator/login" in resp.headers["Location"]
            else:
                assert "Platform administration" not in resp.text or "password" in resp.text
    assert query(env.app, lambda s: s.query(AuditEntry).count()) == 0
