"""LTI Dynamic Registration 1.0 (https://www.imsglobal.org/spec/lti-dr/v1p0), tool side.

The platform opens /lti/register with `openid_configuration` and `registration_token` (§3.3).
We fetch the platform's configuration with the token (§3.4), show the administrator what will be
registered, POST our client registration on confirmation (§3.5), store the result and close
with the `org.imsglobal.lti.close` postMessage (§3.6). The registration URL is public, so a
registration arrives inactive unless it carries a valid one-time invite from `flask lti invite`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import current_app, render_template, request
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update

from .. import cache, db
from ..db import utcnow
from . import services
from .errors import LtiError
from .models import Deployment, Registration, RegistrationInvite

log = logging.getLogger(__name__)

AGS = "https://purl.imsglobal.org/spec/lti-ags/scope/"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
WANTED_SCOPES = (
    AGS + "lineitem",
    AGS + "lineitem.readonly",
    AGS + "score",
    AGS + "result.readonly",
    NRPS,
)
PLATFORM_CONF = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"
DR_KEY = "lti:dr:"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="lti-dynamic-registration")


def _check_url(url: str | None, what: str) -> str:
    if not isinstance(url, str) or not url:
        raise LtiError("bad_registration", f"{what} missing")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and current_app.config["LTI_ALLOW_INSECURE_LOOPBACK"]:
        host = parts.hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
    raise LtiError("bad_registration", f"{what} {url!r} is not https")


def _http() -> requests.Session:
    return services().http


def fetch_platform_configuration(url: str, token: str) -> dict[str, Any]:
    url = _check_url(url, "openid_configuration")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = _http().get(url, headers=headers, timeout=current_app.config["LTI_HTTP_TIMEOUT"])
        resp.raise_for_status()
        conf = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise LtiError("bad_registration", f"openid configuration: {exc}") from exc
    if not isinstance(conf, dict):
        raise LtiError("bad_registration", "openid configuration is not an object")
    for field in (
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "registration_endpoint",
    ):
        _check_url(conf.get(field), field)
    # §3.5.1: the issuer must be the host that served the configuration.
    if urlsplit(conf["issuer"]).netloc != urlsplit(url).netloc:
        raise LtiError("bad_registration", "issuer host differs from the configuration URL")
    return conf


def client_registration(base: str, conf: dict[str, Any]) -> dict[str, Any]:
    supported = set(conf.get("scopes_supported") or [])
    scopes = [s for s in WANTED_SCOPES if not supported or s in supported]
    title = current_app.config["TOOL_TITLE"]
    messages_supported = {
        m.get("type")
        for m in (conf.get(PLATFORM_CONF, {}) or {}).get("messages_supported", [])
        if isinstance(m, dict)
    }
    messages: list[dict[str, Any]] = [
        {"type": "LtiResourceLinkRequest", "target_link_uri": base + "/lti/launch", "label": title}
    ]
    if not messages_supported or "LtiDeepLinkingRequest" in messages_supported:
        messages.append(
            {
                "type": "LtiDeepLinkingRequest",
                "target_link_uri": base + "/lti/launch",
                "label": title,
                "label#de": "Spinning® Instructor Online-Rezertifizierung",
                "label#es": "Recertificación online de instructores Spinning®",
                "roles": [
                    "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                    "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper",
                ],
            }
        )
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": base + "/lti/login",
        "redirect_uris": [base + "/lti/launch"],
        "client_name": title,
        "client_name#de": "Spinning® Instructor Online-Rezertifizierung",
        "client_name#es": "Recertificación online de instructores Spinning®",
        "jwks_uri": base + "/lti/jwks",
        "logo_uri": base + "/static/logo.svg",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        TOOL_CONF: {
            "domain": urlsplit(base).netloc,
            "target_link_uri": base + "/lti/launch",
            "description": "Home-study recertification course awarding 14 SPIN® CECs.",
            "custom_parameters": {"context_id_history": "$Context.id.history"},
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email", "locale"],
            "messages": messages,
        },
    }


def start(base: str) -> str:
    oc_url = request.args.get("openid_configuration", "")
    token = request.args.get("registration_token", "")
    conf = fetch_platform_configuration(oc_url, token)
    ticket = secrets.token_urlsafe(24)
    cache.set(
        DR_KEY + ticket,
        {"conf": conf, "token": token, "invite": request.args.get("invite", "")},
        3600,
    )
    product = (conf.get(PLATFORM_CONF) or {}).get("product_family_code") or ""
    return render_template(
        "lti/register.html",
        issuer=conf["issuer"],
        product=product,
        ticket=_serializer().dumps(ticket),
        invited=bool(request.args.get("invite")),
    )


def _invite_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(note: str = "") -> str:
    token = secrets.token_urlsafe(24)
    with db.standalone_session() as s:
        s.add(
            RegistrationInvite(
                token_hash=_invite_hash(token),
                note=note,
                expires_at=utcnow() + timedelta(seconds=current_app.config["LTI_INVITE_TTL"]),
            )
        )
        s.commit()
    return token


def complete(base: str) -> str:
    try:
        ticket = _serializer().loads(request.form.get("ticket", ""), max_age=3600)
    except BadSignature as exc:
        raise LtiError("bad_registration", "ticket signature") from exc
    data = cache.get(DR_KEY + str(ticket))
    if not isinstance(data, dict):
        raise LtiError("bad_registration", "ticket expired or used")
    cache.delete(DR_KEY + str(ticket))
    conf: dict[str, Any] = data["conf"]
    body = client_registration(base, conf)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if data["token"]:
        headers["Authorization"] = f"Bearer {data['token']}"
    try:
        resp = _http().post(
            conf["registration_endpoint"],
            json=body,
            headers=headers,
            timeout=current_app.config["LTI_HTTP_TIMEOUT"],
        )
    except requests.RequestException as exc:
        raise LtiError("registration_failed", str(exc)) from exc
    if resp.status_code >= 300:
        raise LtiError("registration_failed", f"{resp.status_code}: {resp.text[:500]}")
    try:
        answer = resp.json()
        client_id = str(answer["client_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LtiError("registration_failed", "no client_id in the answer") from exc
    tool_conf = answer.get(TOOL_CONF) if isinstance(answer, dict) else None
    deployment_id = tool_conf.get("deployment_id") if isinstance(tool_conf, dict) else None

    s = db.session()
    active = False
    if data["invite"]:
        consumed = s.execute(
            update(RegistrationInvite)
            .where(
                RegistrationInvite.token_hash == _invite_hash(data["invite"]),
                RegistrationInvite.used_at.is_(None),
                RegistrationInvite.expires_at > utcnow(),
            )
            .values(used_at=utcnow())
        )
        active = consumed.rowcount == 1  # type: ignore[attr-defined]
    reg = s.scalars(
        select(Registration).where(
            Registration.issuer == conf["issuer"], Registration.client_id == client_id
        )
    ).first()
    if reg is None:
        reg = Registration(issuer=conf["issuer"], client_id=client_id)
        s.add(reg)
    reg.name = (conf.get(PLATFORM_CONF) or {}).get("product_family_code") or conf["issuer"]
    reg.auth_login_url = conf["authorization_endpoint"]
    reg.auth_token_url = conf["token_endpoint"]
    reg.auth_audience = conf.get("authorization_server") or None
    reg.key_set_url = conf["jwks_uri"]
    reg.source = "dynamic"
    reg.is_active = active
    reg.platform_info = {
        "platform": conf.get(PLATFORM_CONF) or {},
        "scope": answer.get("scope", body["scope"]),
    }
    s.flush()
    if isinstance(deployment_id, str) and deployment_id:
        dep = s.scalars(
            select(Deployment).where(
                Deployment.registration_id == reg.id, Deployment.deployment_id == deployment_id
            )
        ).first()
        if dep is None:
            s.add(Deployment(registration_id=reg.id, deployment_id=deployment_id, is_active=active))
        else:
            dep.is_active = active
    if active:
        s.execute(
            update(RegistrationInvite)
            .where(RegistrationInvite.token_hash == _invite_hash(data["invite"]))
            .values(registration_id=reg.id)
        )
    s.commit()
    services().registry.invalidate()
    log.info(
        "dynamic registration stored: issuer=%s client_id=%s deployment=%s active=%s",
        conf["issuer"],
        client_id,
        deployment_id,
        active,
    )
    return render_template(
        "lti/registered.html",
        active=active,
        message=_("The course tool is registered.")
        if active
        else _(
            "The course tool is registered and waits for the tool operator to activate it. "
            "You will be able to use it once that is done."
        ),
    )


def canvas_configuration(base: str) -> dict[str, Any]:
    """A Canvas developer-key JSON configuration (Canvas docs: "LTI 1.3 JSON configuration").

    Paste its URL into Canvas's "Enter URL" developer key form.
    """
    title = current_app.config["TOOL_TITLE"]
    launch = base + "/lti/launch"
    return {
        "title": title,
        "description": "Home-study recertification course awarding 14 SPIN® CECs.",
        "oidc_initiation_url": base + "/lti/login",
        "target_link_uri": launch,
        "public_jwk_url": base + "/lti/jwks",
        "scopes": list(WANTED_SCOPES),
        "custom_fields": {"context_id_history": "$Context.id.history"},
        "extensions": [
            {
                "domain": urlsplit(base).netloc,
                "platform": "canvas.instructure.com",
                "privacy_level": "public",
                "settings": {
                    "icon_url": base + "/static/logo.svg",
                    "placements": [
                        {
                            "placement": "link_selection",
                            "message_type": "LtiDeepLinkingRequest",
                            "target_link_uri": launch,
                            "text": title,
                        },
                        {
                            "placement": "assignment_selection",
                            "message_type": "LtiDeepLinkingRequest",
                            "target_link_uri": launch,
                            "text": title,
                        },
                        {
                            "placement": "course_navigation",
                            "message_type": "LtiResourceLinkRequest",
                            "target_link_uri": launch,
                            "text": title,
                            "default": "disabled",
                        },
                    ],
                },
            }
        ],
    }
