"""Small HTTP helpers shared by the platform's endpoints."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal
from typing import Any, TypeGuard
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Request, Response

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$"
)


def json_response(
    body: Any,
    status: int = 200,
    media_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Response:
    resp = Response(json.dumps(body), status=status, mimetype=media_type)
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def error(
    status: int, code: str, description: str, headers: dict[str, str] | None = None
) -> Response:
    """OAuth 2.0 style error body, which is also what LMS service APIs commonly answer."""
    return json_response({"error": code, "error_description": description}, status, headers=headers)


def media_type(request: Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def accepts(request: Request, offered: str) -> bool:
    """True when the Accept header allows the offered media type (absent header = anything)."""
    header = request.headers.get("Accept")
    if not header:
        return True
    for part in header.split(","):
        mt = part.split(";")[0].strip().lower()
        if mt in ("*/*", offered, "application/json", offered.split("/")[0] + "/*"):
            return True
    return False


def parse_json_body(request: Request) -> Any:
    try:
        return json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        return None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def iso_instant(value: Any) -> Decimal | None:
    """Epoch seconds (exact, sub-second kept) of an ISO 8601 timestamp WITH a zone, else None."""
    if not isinstance(value, str):
        return None
    m = _ISO_RE.match(value)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7) or "0", m.group(8)
    import datetime as dt

    try:
        base = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError:
        return None
    offset = 0
    if zone != "Z":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 3600 + minutes * 60) * (1 if zone[0] == "+" else -1)
    return Decimal(int(base.timestamp()) - offset) + Decimal("0." + frac)


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def with_query(url: str, **params: str | int | None) -> str:
    """Add query parameters to a URL that may already have a query string."""
    parts = urlsplit(url)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = "&".join(q for q in (parts.query, extra) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def insert_path(url: str, suffix: str) -> str:
    """'/x?type_id=1' + '/scores' -> '/x/scores?type_id=1' (AGS §3.4.1)."""
    parts = urlsplit(url)
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + suffix, parts.query, "")
    )


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    """JSON safe to embed inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(title: str, body: str, head: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title>{head}</head><body>{body}</body></html>"
    )


def is_loopback_host(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


def url_ok_for_registration(url: Any) -> bool:
    """https anywhere, plain http only on loopback (dev/test)."""
    if not isinstance(url, str) or not url:
        return False
    parts = urlsplit(url)
    if parts.fragment or not parts.netloc:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback_host(parts.hostname)
