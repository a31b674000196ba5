"""A scripted browser for LTI launches: follows redirects and auto-submitting forms, keeps cookies.

It runs no JavaScript. It follows what LTI pages do with it: HTTP redirects,
auto-submitting forms, meta refresh and simple ``location = "..."`` scripts; a
``js_redirect`` hook can emulate anything else.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests

from .cookies import CookieContext, CookieJar, site_of
from .web import with_query

if TYPE_CHECKING:
    from .model import LaunchPlan

REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) StrictTestLMS-Browser/1.0"
_JS_LOCATION = re.compile(
    r"""(?:window\.|top\.|self\.|document\.)?location(?:\.href)?\s*=\s*(["'])(?P<a>[^"']+)\1"""
    r"""|location\.(?:replace|assign)\(\s*(["'])(?P<b>[^"']+)\3\s*\)"""
)
_PYLTI_PROTOCOL = re.compile(r"var siteProtocol = '(\w+)';")
_PYLTI_PARAMS = re.compile(r"var urlParams = (\{.*?\});", re.S)
_META_REFRESH = re.compile(r"^\s*\d*\s*;?\s*url\s*=\s*['\"]?(?P<url>[^'\"]+)", re.I)


class BrowserError(AssertionError):
    """The launch did not go the way a browser would have taken it."""


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]
    page_url: str
    id: str | None = None


@dataclass
class _Page:
    forms: list[Form] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    meta_refresh: str | None = None


class _Parser(HTMLParser):
    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.page = _Page()
        self._form: Form | None = None
        self._textarea: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            action = urljoin(self.base_url, a.get("action") or self.base_url)
            self._form = Form(
                action, (a.get("method") or "GET").upper(), {}, self.base_url, a.get("id")
            )
            self.page.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "textarea" and self._form is not None and a.get("name"):
            self._textarea = a["name"]
            self._form.fields[self._textarea] = ""
        elif tag == "script":
            self._in_script = True
            self.page.scripts.append("")
        elif tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            m = _META_REFRESH.match(a.get("content", ""))
            if m:
                self.page.meta_refresh = urljoin(self.base_url, m.group("url").strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self._form is not None:
            self._form.fields[self._textarea] += data
        elif self._in_script:
            self.page.scripts[-1] += data


def parse_page(html: str, base_url: str) -> _Page:
    parser = _Parser(base_url)
    parser.feed(html)
    parser.close()
    return parser.page


def parse_forms(html: str, base_url: str) -> list[Form]:
    return parse_page(html, base_url).forms


def _form_url(form: Form, fields: Mapping[str, str]) -> str:
    """A GET form replaces the action's query string, as browsers do."""
    parts = urlsplit(form.action)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(dict(fields)), ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Browser:
    """requests.Session wrapper acting like a browser tab (see README)."""

    def __init__(
        self,
        *,
        verify: bool | str | None = None,
        timeout: float = 15.0,
        framed: bool | str = False,
        third_party_cookies: bool = True,
        js_redirect: Callable[[requests.Response], str | None] | None = None,
        max_steps: int = 20,
    ) -> None:
        self.session = requests.Session()
        # Proxies from the environment must never see test traffic; cookies are handled here.
        self.session.trust_env = False
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        if verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or True
        self.verify = verify
        self.timeout = timeout
        self.framed = framed
        self.cookies = CookieJar(third_party_cookies=third_party_cookies)
        self.js_redirect = js_redirect
        self.max_steps = max_steps
        self.history: list[requests.Response] = []
        self.last_form: Form | None = None
        self.last_response: requests.Response | None = None
        self.auth_response: requests.Response | None = None
        self.login_response: requests.Response | None = None
        self.page_url: str | None = None
        self.plan: LaunchPlan | None = None

    # ------------------------------------------------------------ low level
    def _top_level_url(self) -> str | None:
        if isinstance(self.framed, str):
            return self.framed
        if self.framed and self.plan is not None:
            return self.plan.issuer
        return None

    def request(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        initiator: str | None = None,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> requests.Response:
        """One navigation (plus its redirects) of this tab, initiated by the page at `initiator`."""
        method = method.upper()
        chain = [site_of(initiator)] if initiator else []
        top_url = self._top_level_url()
        hops: list[requests.Response] = []
        body: Mapping[str, str] | None = data
        while True:
            request_site = site_of(url)
            top_site = site_of(top_url) if top_url else request_site
            same = request_site == top_site and all(s == request_site for s in chain)
            ctx = CookieContext(top_site, request_site, same, top_url is None, method)
            hdrs = {
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "iframe" if top_url else "document",
                "Sec-Fetch-Site": "none" if not chain else ("same-site" if same else "cross-site"),
            }
            if initiator and method == "POST":
                hdrs["Origin"] = _origin(initiator) if not hops else "null"
            if initiator and not hops:
                hdrs["Referer"] = (
                    initiator if _origin(initiator) == _origin(url) else _origin(initiator) + "/"
                )
            cookie = self.cookies.header_for(url, ctx)
            if cookie:
                hdrs["Cookie"] = cookie
            hdrs.update(headers or {})
            resp = self.session.request(
                method,
                url,
                data=body if method != "GET" else None,
                headers=hdrs,
                allow_redirects=False,
                timeout=self.timeout,
                verify=self.verify,
            )
            for set_cookie in (
                resp.raw.headers.getlist("Set-Cookie") if resp.raw is not None else []
            ):
                self.cookies.store(url, set_cookie, ctx)
            hops.append(resp)
            self.history.append(resp)
            location = resp.headers.get("Location")
            if not (follow_redirects and resp.status_code in REDIRECTS and location):
                break
            if len(hops) > self.max_steps:
                raise BrowserError(f"too many redirects starting at {hops[0].url}")
            chain.append(request_site)
            url = urljoin(resp.url, location)
            if resp.status_code in (301, 302, 303) and method != "HEAD":
                method, body = "GET", None
        final = hops[-1]
        final.history = hops[:-1]
        self.last_response = final
        self.page_url = final.url
        return final

    def get(
        self, url: str, *, initiator: str | None = None, follow_redirects: bool = True
    ) -> requests.Response:
        return self.request(
            "GET", url, initiator=initiator or self.page_url, follow_redirects=follow_redirects
        )

    def post(
        self,
        url: str,
        data: Mapping[str, str],
        *,
        initiator: str | None = None,
        follow_redirects: bool = True,
    ) -> requests.Response:
        return self.request(
            "POST",
            url,
            data=data,
            initiator=initiator or self.page_url,
            follow_redirects=follow_redirects,
        )

    def open(self, url: str) -> requests.Response:
        """Navigate as if the user typed the URL (no initiator)."""
        return self.request("GET", url)

    def next_navigation(
        self, resp: requests.Response
    ) -> tuple[str, str, dict[str, str] | None] | None:
        """(method, url, form data) the page would navigate to by itself, or None."""
        location = resp.headers.get("Location")
        if resp.status_code in REDIRECTS and location:
            return "GET", urljoin(resp.url, location), None
        if self.js_redirect is not None:
            target = self.js_redirect(resp)
            if target:
                return "GET", urljoin(resp.url, target), None
        if "html" not in resp.headers.get("Content-Type", ""):
            return None
        if "lti1p3-new-tab-link" in resp.text:
            target = self._pylti1p3_cookie_check(resp)
            return ("GET", target, None) if target else None
        parsed = parse_page(resp.text, resp.url)
        scripts = "\n".join(parsed.scripts)
        if parsed.forms and (".submit()" in scripts or "requestSubmit(" in scripts):
            form = parsed.forms[0]
            self.last_form = form
            if form.method == "GET":
                return "GET", _form_url(form, form.fields), None
            return form.method, form.action, dict(form.fields)
        if parsed.meta_refresh:
            return "GET", parsed.meta_refresh, None
        match = _JS_LOCATION.search(scripts)
        if match:
            return "GET", urljoin(resp.url, match.group("a") or match.group("b")), None
        return None

    def _pylti1p3_cookie_check(self, resp: requests.Response) -> str | None:
        """Emulate pylti1p3's cookie-check page: set a test cookie from JS; reload if it stuck."""
        protocol = _PYLTI_PROTOCOL.search(resp.text)
        params = _PYLTI_PARAMS.search(resp.text)
        if not protocol or not params:
            return None
        top_url = self._top_level_url()
        page_site = site_of(resp.url)
        top_site = site_of(top_url) if top_url else page_site
        ctx = CookieContext(top_site, page_site, page_site == top_site, top_url is None, "GET")
        test = "lti1p3_test_cookie=1; path=/"
        if protocol.group(1) == "https":
            test += "; SameSite=None; secure"
        rejected = len(self.cookies.rejected)
        self.cookies.store(resp.url, test, ctx)
        if len(self.cookies.rejected) > rejected:
            return None  # the page now shows "open in a new window" and stays
        self.cookies.store(resp.url, "lti1p3_test_cookie=1; path=/; Max-Age=0", ctx)
        query = urlsplit(resp.url).query
        extra = {
            k: html.unescape(str(v))
            for k, v in json.loads(params.group(1)).items()
            if f"{k}=" not in query
        }
        return with_query(resp.url, **extra)

    # ------------------------------------------------------------ LTI steps
    def start_login(
        self, plan: LaunchPlan, login_url: str | None = None, method: str = "GET"
    ) -> requests.Response:
        """The platform starts third-party initiated login; returns the tool's answer."""
        self.plan = plan
        url = login_url or plan.login_url
        if method.upper() == "GET":
            resp = self.request(
                "GET",
                with_query(url, **plan.login_params),
                initiator=plan.issuer,
                follow_redirects=False,
            )
        else:
            resp = self.request(
                "POST", url, data=plan.login_params, initiator=plan.issuer, follow_redirects=False
            )
        self.login_response = resp
        return resp

    def _is_auth(self, url: str) -> bool:
        if self.plan is None:
            return False
        auth = urlsplit(self.plan.auth_url)
        here = urlsplit(url)
        return (here.scheme, here.netloc, here.path) == (auth.scheme, auth.netloc, auth.path)

    def follow_auth(self, resp: requests.Response | None = None) -> requests.Response:
        """From the tool's login answer to the platform's auth answer; sets last_form."""
        current = resp if resp is not None else self.last_response
        if current is None:
            raise BrowserError("nothing to follow: call start_login first")
        for _ in range(self.max_steps):
            if self._is_auth(current.url):
                break
            step = self.next_navigation(current)
            if step is None:
                snippet = current.text[:300].replace("\n", " ")
                raise BrowserError(
                    f"the page at {current.url} (HTTP {current.status_code}) does not lead to "
                    f"the platform's auth endpoint: {snippet!r}"
                )
            method, url, data = step
            current = self.request(method, url, data=data, initiator=current.url)
        else:
            raise BrowserError("too many steps before reaching the platform's auth endpoint")
        self.auth_response = current
        if current.status_code == 200:
            forms = parse_forms(current.text, current.url)
            if forms:
                self.last_form = forms[0]
        return current

    def submit_form(
        self,
        form: Form | requests.Response | None = None,
        *,
        override: Mapping[str, str] | None = None,
        remove: Iterable[str] = (),
        follow_redirects: bool = True,
    ) -> requests.Response:
        """Submit a form as the browser would; default: the last form (id_token + state)."""
        if form is None:
            form = self.last_form
        elif isinstance(form, requests.Response):
            forms = parse_forms(form.text, form.url)
            if not forms:
                raise BrowserError(f"no form in the page at {form.url}")
            form = forms[0]
            self.last_form = form
        if form is None:
            raise BrowserError("no form to submit")
        fields = dict(form.fields)
        fields.update(override or {})
        for name in remove:
            fields.pop(name, None)
        if form.method == "GET":
            return self.request(
                "GET",
                _form_url(form, fields),
                initiator=form.page_url,
                follow_redirects=follow_redirects,
            )
        return self.request(
            form.method,
            form.action,
            data=fields,
            initiator=form.page_url,
            follow_redirects=follow_redirects,
        )

    def launch(
        self,
        plan: LaunchPlan,
        login_url: str | None = None,
        method: str = "GET",
        follow_redirects: bool = True,
    ) -> requests.Response:
        """Full round trip; returns the tool's final answer to the id_token POST.

        If the tool answers the login initiation with a page that goes nowhere (an error),
        that page is returned. If the platform rejects the auth request, BrowserError is raised
        with the platform's reason (see lms.auth_requests).
        """
        resp = self.start_login(plan, login_url, method)
        if self.next_navigation(resp) is None:
            return resp
        auth = self.follow_auth(resp)
        if auth.status_code != 200 or self.last_form is None or not self._is_auth(auth.url):
            raise BrowserError(
                f"the platform rejected the auth request (HTTP {auth.status_code}): "
                f"{auth.text[:500]}"
            )
        return self.submit_form(self.last_form, follow_redirects=follow_redirects)

    @property
    def id_token(self) -> str | None:
        return self.last_form.fields.get("id_token") if self.last_form else None

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
