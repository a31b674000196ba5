"""The AGS and OAuth 2 calls, and how their failures are classified for the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
MT_SCORE = "application/vnd.ims.lis.v1.score+json"
MT_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MT_LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SUCCESS = (200, 201, 202, 204)
# Retry-After is honoured, within reason: a day is longer than any real maintenance window.
MAX_RETRY_AFTER = 24 * 3600.0

RETRY, FAIL, AUTH = "retry", "fail", "auth"


class ServiceError(Exception):
    """A failed call: `kind` RETRY (transient), AUTH (token refused) or FAIL (permanent)."""

    def __init__(
        self,
        kind: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        stale_lineitem: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status
        self.retry_after, self.stale_lineitem = retry_after, stale_lineitem


def scores_url(lineitem_url: str) -> str:
    """AGS §3.4.1: '/scores' goes after the line item path, before any query string."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + "/scores", parts.query, "")
    )


def with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def platform_message(resp: requests.Response) -> str:
    """The platform's own explanation, for the admin page."""
    text = resp.text or ""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [
            str(body[k])
            for k in ("error_description", "message", "reason", "detail", "error")
            if isinstance(body.get(k), (str, int)) and body.get(k)
        ]
        if parts:
            text = parts[0]
    text = " ".join(text.split())
    return f"HTTP {resp.status_code}: {text[:500]}" if text else f"HTTP {resp.status_code}"


def classify(resp: requests.Response, what: str) -> ServiceError:
    status = resp.status_code
    message = f"{what}: {platform_message(resp)}"
    if status == 401:
        return ServiceError(AUTH, message, status)
    if status == 429 or status >= 500 or status == 408:
        return ServiceError(
            RETRY, message, status, parse_retry_after(resp.headers.get("Retry-After"))
        )
    return ServiceError(FAIL, message, status, stale_lineitem=status in (404, 410))


def lineitem_exists(
    http: requests.Session, lineitem_url: str, token: str, timeout: float
) -> bool | None:
    """After a 404 on a score: is the column gone, or only this user unknown (Canvas answers
    404 for its test students)? None when the platform will not say."""
    try:
        resp = http.get(
            lineitem_url,
            headers={"Authorization": f"Bearer {token}", "Accept": MT_LINEITEM},
            timeout=timeout,
        )
    except requests.RequestException:
        return None
    if resp.status_code in (404, 410):
        return False
    return True if resp.status_code == 200 else None


def _call(http: requests.Session, method: str, url: str, what: str, **kw: Any) -> requests.Response:
    try:
        return http.request(method, url, **kw)
    except requests.Timeout as exc:
        raise ServiceError(RETRY, f"{what}: timed out ({type(exc).__name__})") from exc
    except requests.ConnectionError as exc:
        raise ServiceError(RETRY, f"{what}: connection failed ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise ServiceError(RETRY, f"{what}: {type(exc).__name__}: {exc}") from exc


def request_token(
    http: requests.Session, token_url: str, assertion: str, scopes: list[str], timeout: float
) -> tuple[str, float]:
    """Client-credentials grant with a JWT client assertion (Security Framework §4.1)."""
    resp = _call(
        http,
        "POST",
        token_url,
        "token request",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": " ".join(scopes),
        },
        headers={"Accept": "application/json"},
        timeout=timeout,
    )
    if resp.status_code != 200:
        err = classify(resp, "token request")
        # A refused client assertion is a registration problem an operator fixes; the scores
        # wait for that instead of failing for good.
        err.kind = RETRY
        raise err
    try:
        body = resp.json()
        token = body["access_token"]
        expires_in = float(body.get("expires_in") or 3600)
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError(RETRY, "token request: no access_token in the answer") from exc
    if not isinstance(token, str) or not token:
        raise ServiceError(RETRY, "token request: empty access_token")
    return token, expires_in


def post_score(
    http: requests.Session, lineitem_url: str, token: str, body: dict[str, Any], timeout: float
) -> int:
    resp = _call(
        http,
        "POST",
        scores_url(lineitem_url),
        "score",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": MT_SCORE},
        timeout=timeout,
    )
    if resp.status_code in SUCCESS:
        return resp.status_code
    raise classify(resp, "score")


@dataclass(frozen=True)
class LineItemSpec:
    resource_link_id: str
    tag: str
    resource_id: str
    label: str
    score_maximum: float


def iter_lineitems(
    http: requests.Session, lineitems_url: str, token: str, params: dict[str, str], timeout: float
) -> Iterator[dict[str, Any]]:
    """Every line item, following `Link: rel="next"` (AGS §3.2.6 paging)."""
    url: str | None = with_params(lineitems_url, params)
    seen: set[str] = set()
    while url and url not in seen:
        seen.add(url)
        resp = _call(
            http,
            "GET",
            url,
            "line items",
            headers={"Authorization": f"Bearer {token}", "Accept": MT_LINEITEM_CONTAINER},
            timeout=timeout,
        )
        if resp.status_code != 200:
            raise classify(resp, "line items")
        try:
            items = resp.json()
        except ValueError as exc:
            raise ServiceError(RETRY, "line items: the platform's answer is not JSON") from exc
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                yield item
        following = resp.links.get("next", {}).get("url")
        url = urljoin(url, following) if following else None


def create_lineitem(
    http: requests.Session, lineitems_url: str, token: str, spec: LineItemSpec, timeout: float
) -> str:
    body = {
        "label": spec.label,
        "scoreMaximum": spec.score_maximum,
        "resourceLinkId": spec.resource_link_id,
        "resourceId": spec.resource_id,
        "tag": spec.tag,
    }
    resp = _call(
        http,
        "POST",
        lineitems_url,
        "create line item",
        data=json.dumps(body),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": MT_LINEITEM,
            "Accept": MT_LINEITEM,
        },
        timeout=timeout,
    )
    if resp.status_code not in SUCCESS:
        raise classify(resp, "create line item")
    try:
        created = resp.json()
    except ValueError:
        created = None
    url = created.get("id") if isinstance(created, dict) else None
    url = url or resp.headers.get("Location")
    if not isinstance(url, str) or not url:
        raise ServiceError(FAIL, "create line item: the platform returned no line item id")
    return url
