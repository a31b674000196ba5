"""The Browser's cookie rules: SameSite across sites, framing, blocked third-party cookies."""

from __future__ import annotations

import pytest

from tests.lms import Browser, TestPlatform
from tests.lms.browser import parse_page
from tests.lms.cookies import CookieContext, CookieJar, site_of
from tests.lms_selftest.fake_tool import FakeTool


@pytest.mark.parametrize(
    ("attrs", "framed", "third_party", "ok"),
    [
        ("SameSite=None; Secure", False, True, True),
        ("SameSite=Lax", False, True, False),  # cross-site form POST drops Lax cookies
        ("", False, True, False),  # no SameSite means Lax
        ("SameSite=None; Secure", True, True, True),
        ("SameSite=None; Secure", True, False, False),  # third-party cookies blocked
        ("SameSite=None; Secure; Partitioned", True, False, True),  # CHIPS survives blocking
    ],
)
def test_cross_site_launch_cookie_rules(
    lms: TestPlatform, attrs: str, framed: bool, third_party: bool, ok: bool
) -> None:
    with FakeTool(lms, cookie_attrs=attrs, host="localhost") as tool:
        tool.register()
        plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
        with Browser(framed=framed, third_party_cookies=third_party) as b:
            resp = b.launch(plan)
            assert (resp.status_code == 200) is ok, (
                resp.status_code,
                resp.text,
                b.cookies.rejected,
            )
            assert b.history[-1].request.headers.get("Sec-Fetch-Site") == "cross-site"


def test_same_site_launch_keeps_lax_cookies(lms: TestPlatform) -> None:
    with FakeTool(lms, cookie_attrs="SameSite=Lax") as tool:
        tool.register()
        plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
        with Browser() as b:
            assert b.launch(plan).status_code == 200
            assert b.cookies.get("tool_state") is not None


@pytest.mark.parametrize(
    ("host", "framed", "ok"),
    [
        ("127.0.0.1", False, True),
        (
            "localhost",
            True,
            False,
        ),  # http: the JS test cookie is Lax, refused in a cross-site frame
    ],
)
def test_pylti1p3_cookie_check_page_is_emulated(
    lms: TestPlatform, host: str, framed: bool, ok: bool
) -> None:
    with FakeTool(lms, host=host) as tool:
        tool.cookie_check = True
        tool.register()
        plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
        with Browser(framed=framed) as b:
            resp = b.launch(plan)
        if ok:
            assert resp.status_code == 200 and resp.json()["ok"]
            assert "lti1p3_new_window=1" in b.history[1].url
        else:
            assert "lti1p3-warning-msg" in resp.text and not lms.auth_requests


def ctx(
    top: str, url: str, same: bool = True, nav: bool = True, method: str = "GET"
) -> CookieContext:
    return CookieContext(site_of(top), site_of(url), same, nav, method)


def test_cookie_jar_basics() -> None:
    jar = CookieJar()
    url = "https://tool.example.org/app/login"
    c = ctx(url, url)
    jar.store(url, "a=1; Path=/app", c)
    jar.store(url, "b=2", c)  # default path /app
    jar.store(url, "d=4; Domain=example.org; Path=/; Secure", c)
    jar.store(url, "e=5; Max-Age=0", c)
    jar.store(
        "http://tool.example.org/",
        "s=1; Secure",
        ctx("http://tool.example.org/", "http://tool.example.org/"),
    )
    jar.store(url, "n=1; SameSite=None", c)
    assert [r.reason for r in jar.rejected] == [
        "Secure cookie from an insecure origin",
        "SameSite=None without Secure",
    ]
    assert jar.header_for("https://tool.example.org/app/x", c) == "a=1; b=2; d=4"
    assert jar.header_for("https://www.example.org/", ctx(url, "https://www.example.org/")) == "d=4"
    assert jar.header_for("https://tool.example.org/other", c) == "d=4"
    jar.store(url, "a=gone; Path=/app; Max-Age=0", c)
    assert jar.get("a") is None and jar.get("b") == "2"


def test_site_of() -> None:
    assert site_of("https://a.b.example.co:8443/x") == "https://example.co"
    assert site_of("http://127.0.0.1:5000") == "http://127.0.0.1"
    assert site_of("http://localhost:1") == "http://localhost"


def test_page_parsing() -> None:
    html = (
        '<meta http-equiv="refresh" content="0; url=/next">'
        '<form id="f" action="/go" method="post"><input name="a" value="1">'
        '<input type="checkbox" name="c"><input type="submit" name="s" value="x">'
        '<textarea name="t">hello</textarea></form><script>location.replace("/js")</script>'
    )
    page = parse_page(html, "http://h.example/base/")
    [form] = page.forms
    assert form.action == "http://h.example/go" and form.method == "POST" and form.id == "f"
    assert form.fields == {"a": "1", "t": "hello"}
    assert page.meta_refresh == "http://h.example/next"
