"""Deep Linking 2.0 return endpoint: verifies the tool's LtiDeepLinkingResponse JWT."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, Response, request

from . import claims as C
from .model import DeepLinkResponseRecord, LaunchPlan
from .oauth import AssertionRejected, check_times, verify_tool_jwt
from .web import esc, is_number, page

if TYPE_CHECKING:
    from .server import TestPlatform


class Rejected(Exception):
    pass


def _find_plan(lms: TestPlatform, client_id: str, claims: dict[str, Any]) -> LaunchPlan:
    candidates = [
        p
        for p in lms.plans.values()
        if p.client_id == client_id
        and p.message_type == C.DEEP_LINKING_REQUEST
        and p.used
        and not p.answered
    ]
    if C.DL_DATA in claims:
        for plan in candidates:
            if plan.claims.get(C.DL_SETTINGS, {}).get("data") == claims[C.DL_DATA]:
                return plan
        raise Rejected(
            "data does not match any open deep linking request (it must be echoed exactly)"
        )
    for plan in reversed(candidates):
        if "data" in plan.claims.get(C.DL_SETTINGS, {}):
            raise Rejected(
                "the deep linking request carried data; the response must echo it unchanged"
            )
        return plan
    raise Rejected("no open deep linking request for this tool")


def _check_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _check_item(lms: TestPlatform, item: Any, settings: dict[str, Any]) -> None:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise Rejected("each content item must be an object with a type")
    kind = item["type"]
    if kind not in settings.get("accept_types", []):
        raise Rejected(
            f"content item type {kind!r} is not in accept_types {settings.get('accept_types')}"
        )
    title = item.get("title")
    if title is not None and not isinstance(title, str):
        raise Rejected("title must be a string")
    if kind == "ltiResourceLink":
        if lms.dl_require_title and not (isinstance(title, str) and title.strip()):
            raise Rejected("ltiResourceLink needs a title (this platform shows it in the course)")
        if "url" in item and not _check_url(item["url"]):
            raise Rejected("ltiResourceLink url must be an absolute http(s) URL (or be omitted)")
        custom = item.get("custom")
        if custom is not None and not (
            isinstance(custom, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in custom.items())
        ):
            raise Rejected("custom must be an object whose values are all strings")
        line_item = item.get("lineItem")
        if line_item is not None:
            if not settings.get("accept_lineitem", False):
                raise Rejected("lineItem sent but the request did not set accept_lineitem")
            if not isinstance(line_item, dict):
                raise Rejected("lineItem must be an object")
            if not is_number(line_item.get("scoreMaximum")) or line_item["scoreMaximum"] <= 0:
                raise Rejected("lineItem.scoreMaximum is required and must be a number > 0")
            label = line_item.get("label", title)
            if not isinstance(label, str) or not label.strip():
                raise Rejected("lineItem.label (or the item title) must be a non-empty string")
            for name in ("tag", "resourceId"):
                if name in line_item and not isinstance(line_item[name], str):
                    raise Rejected(f"lineItem.{name} must be a string")
        target = item.get("window") or item.get("iframe")
        if target is not None and not isinstance(target, dict):
            raise Rejected("window/iframe must be objects")
    elif kind in ("link", "file", "image") and not _check_url(item.get("url")):
        raise Rejected(f"{kind} content items need an absolute url")
    elif kind == "html" and not isinstance(item.get("html"), str):
        raise Rejected("html content items need an html string")


def handle(lms: TestPlatform, jwt_value: str | None) -> DeepLinkResponseRecord:
    if not jwt_value:
        raise Rejected("the JWT form field is missing")
    try:
        claims, client_id = verify_tool_jwt(lms, jwt_value)
        check_times(lms, claims, max_lifetime=3600)
    except AssertionRejected as exc:
        raise Rejected(exc.description) from exc
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if lms.issuer not in auds:
        raise Rejected(f"aud must be the platform issuer {lms.issuer!r}, got {aud!r}")
    if len(auds) > 1 and claims.get("azp") != lms.issuer:
        raise Rejected("azp must be the platform issuer when aud has several values")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise Rejected("nonce is required")
    if claims.get(C.MESSAGE_TYPE) != C.DEEP_LINKING_RESPONSE:
        raise Rejected(f"message_type must be {C.DEEP_LINKING_RESPONSE}")
    if claims.get(C.VERSION) != C.LTI_VERSION:
        raise Rejected(f"version must be {C.LTI_VERSION}")
    with lms.lock:
        plan = _find_plan(lms, client_id, claims)
        if claims.get(C.DEPLOYMENT_ID) != plan.deployment_id:
            raise Rejected("deployment_id must equal the deep linking request's")
        if (client_id, nonce) in lms.dl_nonces:
            raise Rejected("nonce was already used")
        settings: dict[str, Any] = plan.claims.get(C.DL_SETTINGS, {})
        items = claims.get(C.DL_CONTENT_ITEMS, [])
        if not isinstance(items, list):
            raise Rejected("content_items must be an array")
        if len(items) > 1 and not settings.get("accept_multiple", False):
            raise Rejected("several content items but accept_multiple is false")
        for item in items:
            _check_item(lms, item, settings)
        for name in (C.DL_MSG, C.DL_LOG, C.DL_ERRORMSG, C.DL_ERRORLOG):
            if name in claims and not isinstance(claims[name], str):
                raise Rejected(f"{name} must be a string")
        lms.dl_nonces.add((client_id, nonce))
        plan.answered = True
        record = DeepLinkResponseRecord(
            plan.plan_id,
            client_id,
            claims,
            items,
            msg=claims.get(C.DL_MSG),
            errormsg=claims.get(C.DL_ERRORMSG),
        )
        for item in items:
            if item["type"] != "ltiResourceLink":
                continue
            link = lms.add_resource_link(
                lms.new_secret("dl-rl"),
                plan.context_id,
                client_id,
                item.get("title"),
                url=item.get("url"),
                custom=item.get("custom"),
                description=item.get("text"),
            )
            record.created_links.append(link)
            line_item = item.get("lineItem")
            if line_item is not None and plan.context_id is not None:
                body = dict(line_item)
                body.setdefault("label", item.get("title"))
                body["resourceLinkId"] = link.id
                record.created_lineitems.append(lms._new_lineitem(plan.context_id, client_id, body))
        lms.deep_link_responses.append(record)
    return record


def register(app: Flask, lms: TestPlatform) -> None:
    @app.post("/deep_link/return")
    def deep_link_return() -> Response:
        try:
            record = handle(lms, request.form.get("JWT"))
        except Rejected as exc:
            lms.deep_link_errors.append(str(exc))
            body = f'<h1>Content not added</h1><p id="error">{esc(exc)}</p>'
            return Response(page("Deep linking error", body), status=400, mimetype="text/html")
        titles = "".join(
            f"<li>{esc(i.get('title', i.get('type')))}</li>" for i in record.content_items
        )
        body = (
            f'<h1>Content received</h1><p id="count">{len(record.content_items)} item(s) added</p>'
            f"<ul>{titles}</ul>"
        )
        if record.msg:
            body += f'<p id="msg">{esc(record.msg)}</p>'
        return Response(page("Content received", body), mimetype="text/html")
