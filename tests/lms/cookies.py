"""A browser-like cookie store: Secure, SameSite, Partitioned (CHIPS) and third-party blocking.

requests' own jar ignores SameSite and partitioning, which are exactly what breaks LTI
launches in real LMS iframes, so the Browser keeps cookies here instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def site_of(url: str) -> str:
    """Schemeful site: scheme + registrable domain (last two labels, or the IP)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    labels = host.split(".")
    if host.replace(".", "").isdigit() or ":" in host or len(labels) <= 2:
        domain = host
    else:
        domain = ".".join(labels[-2:])
    return f"{parts.scheme}://{domain}"


def _secure_origin(url: str) -> bool:
    parts = urlsplit(url)
    # Chrome and Firefox treat loopback as a secure context, Secure cookies included.
    return parts.scheme == "https" or (parts.hostname or "") in LOOPBACK


@dataclass
class Cookie:
    name: str
    value: str
    domain: str
    host_only: bool
    path: str
    secure: bool
    http_only: bool
    same_site: str | None
    partition_key: str | None
    expires: float | None

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now


@dataclass
class CookieContext:
    """How the request is made, which decides what cookies it may read and write."""

    top_level_site: str
    request_site: str
    same_site: bool
    top_level_navigation: bool
    method: str

    @property
    def third_party(self) -> bool:
        return self.request_site != self.top_level_site


@dataclass
class Rejection:
    url: str
    header: str
    reason: str


class CookieJar:
    def __init__(self, third_party_cookies: bool = True) -> None:
        self.third_party_cookies = third_party_cookies
        self._cookies: dict[tuple[str, str, str, str | None], Cookie] = {}
        self.rejected: list[Rejection] = []

    # ---------------------------------------------------------------- reading
    def all(self) -> list[Cookie]:
        now = time.time()
        return [c for c in self._cookies.values() if not c.expired(now)]

    def get(self, name: str, host: str | None = None) -> str | None:
        for cookie in self.all():
            if cookie.name == name and (host is None or _domain_match(host, cookie)):
                return cookie.value
        return None

    def clear(self) -> None:
        self._cookies.clear()

    def header_for(self, url: str, ctx: CookieContext) -> str | None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        path = parts.path or "/"
        chosen: list[Cookie] = []
        for cookie in self.all():
            if not _domain_match(host, cookie) or not _path_match(path, cookie.path):
                continue
            if cookie.secure and not _secure_origin(url):
                continue
            if cookie.partition_key is not None and cookie.partition_key != ctx.top_level_site:
                continue
            if not ctx.same_site:
                if cookie.same_site == "strict":
                    continue
                if cookie.same_site in ("lax", None) and not (
                    ctx.top_level_navigation and ctx.method in ("GET", "HEAD")
                ):
                    continue
            if ctx.third_party and not self.third_party_cookies and cookie.partition_key is None:
                continue
            chosen.append(cookie)
        chosen.sort(key=lambda c: -len(c.path))
        return "; ".join(f"{c.name}={c.value}" for c in chosen) or None

    # ---------------------------------------------------------------- writing
    def store(self, url: str, header: str, ctx: CookieContext) -> None:
        reason = self._store(url, header, ctx)
        if reason:
            self.rejected.append(Rejection(url, header, reason))

    def _store(self, url: str, header: str, ctx: CookieContext) -> str | None:
        pieces = header.split(";")
        name, sep, value = pieces[0].partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            return "no name=value"
        attrs: dict[str, str] = {}
        for piece in pieces[1:]:
            key, _, val = piece.partition("=")
            attrs[key.strip().lower()] = val.strip()
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        secure = "secure" in attrs
        if secure and not _secure_origin(url):
            return "Secure cookie from an insecure origin"
        same_site = attrs.get("samesite", "").lower() or None
        if same_site not in (None, "lax", "strict", "none"):
            same_site = None
        if same_site == "none" and not secure:
            return "SameSite=None without Secure"
        if not ctx.same_site and not ctx.top_level_navigation and same_site != "none":
            return f"SameSite={same_site or 'unset (Lax)'} cookie set in a cross-site context"
        partitioned = "partitioned" in attrs
        if partitioned and not secure:
            return "Partitioned without Secure"
        if ctx.third_party and not self.third_party_cookies and not partitioned:
            return "third-party cookies are blocked"
        domain_attr = attrs.get("domain", "").lstrip(".").lower()
        if domain_attr:
            is_ip = host.replace(".", "").isdigit()
            if (is_ip and domain_attr != host) or not (
                host == domain_attr or host.endswith("." + domain_attr)
            ):
                return f"Domain={domain_attr} does not match {host}"
        path = attrs.get("path") or ""
        if not path.startswith("/"):
            req_path = parts.path or "/"
            path = req_path[: req_path.rfind("/")] or "/"
        expires: float | None = None
        if "max-age" in attrs:
            try:
                expires = time.time() + int(attrs["max-age"])
            except ValueError:
                expires = None
        elif "expires" in attrs:
            try:
                expires = parsedate_to_datetime(attrs["expires"]).timestamp()
            except (TypeError, ValueError):
                expires = None
        cookie = Cookie(
            name=name,
            value=value,
            domain=domain_attr or host,
            host_only=not domain_attr,
            path=path,
            secure=secure,
            http_only="httponly" in attrs,
            same_site=same_site,
            partition_key=(ctx.top_level_site if partitioned else None),
            expires=expires,
        )
        slot = (cookie.name, cookie.domain, cookie.path, cookie.partition_key)
        if cookie.expired(time.time()):
            self._cookies.pop(slot, None)
        else:
            self._cookies[slot] = cookie
        return None


def _domain_match(host: str, cookie: Cookie) -> bool:
    if cookie.host_only:
        return host == cookie.domain
    return host == cookie.domain or host.endswith("." + cookie.domain)


def _path_match(path: str, cookie_path: str) -> bool:
    if path == cookie_path:
        return True
    if path.startswith(cookie_path):
        return cookie_path.endswith("/") or path[len(cookie_path)] == "/"
    return False
