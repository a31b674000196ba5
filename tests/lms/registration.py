"""LTI Dynamic Registration 1.0: platform OpenID configuration and the registration endpoint."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, Response, request

from . import claims as C
from .model import RegistrationRecord
from .web import (
    bearer_token,
    error,
    esc,
    json_response,
    media_type,
    page,
    parse_json_body,
    script_json,
    url_ok_for_registration,
    with_query,
)

if TYPE_CHECKING:
    from .server import TestPlatform

CLAIMS_SUPPORTED = [
    "iss",
    "sub",
    "aud",
    "iat",
    "exp",
    "nonce",
    "azp",
    "name",
    "given_name",
    "family_name",
    "email",
    "picture",
    "locale",
]
VARIABLES = [
    "User.id",
    "Person.name.full",
    "Person.name.given",
    "Person.name.family",
    "Person.email.primary",
    "Person.sourcedId",
    "Context.id",
    "Context.title",
    "Context.label",
    "ResourceLink.id",
    "ResourceLink.title",
    "Message.locale",
    "ToolPlatformInstance.guid",
]


class Invalid(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code


def openid_configuration(lms: TestPlatform) -> dict[str, Any]:
    config: dict[str, Any] = {
        "issuer": lms.issuer,
        "authorization_endpoint": lms.auth_url,
        "token_endpoint": lms.token_url,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "jwks_uri": lms.jwks_url,
        "registration_endpoint": lms.registration_url,
        "scopes_supported": ["openid", *C.ALL_SCOPES],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": CLAIMS_SUPPORTED,
        C.PLATFORM_CONFIGURATION: {
            "product_family_code": "strict-test-lms",
            "version": "1.0",
            "messages_supported": [
                {
                    "type": C.RESOURCE_LINK_REQUEST,
                    "placements": ["course_navigation", "link_selection"],
                },
                {
                    "type": C.DEEP_LINKING_REQUEST,
                    "placements": ["link_selection", "assignment_selection"],
                },
            ],
            "variables": VARIABLES,
        },
    }
    if lms.token_audience:
        config["authorization_server"] = lms.token_audience
    return config


def _host_ok(url: str, domains: list[str]) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc = parts.netloc.lower()
    for domain in domains:
        domain = domain.lower()
        if ":" in domain:
            if netloc == domain:
                return True
        elif host == domain or host.endswith("." + domain):
            return True
    return False


def validate(body: Any) -> dict[str, Any]:
    """The tool configuration of DR §3.5 (raise Invalid with an RFC 7591 error code)."""
    if not isinstance(body, dict):
        raise Invalid("invalid_client_metadata", "body must be a JSON object")
    if body.get("application_type") != "web":
        raise Invalid("invalid_client_metadata", "application_type must be 'web'")
    grants = body.get("grant_types")
    if (
        not isinstance(grants, list)
        or "client_credentials" not in grants
        or "implicit" not in grants
    ):
        raise Invalid(
            "invalid_client_metadata",
            "grant_types must contain 'implicit' and 'client_credentials'",
        )
    if body.get("response_types") != ["id_token"]:
        raise Invalid("invalid_client_metadata", "response_types must be ['id_token']")
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        raise Invalid(
            "invalid_client_metadata", "token_endpoint_auth_method must be 'private_key_jwt'"
        )
    name = body.get("client_name")
    if not isinstance(name, str) or not name.strip():
        raise Invalid("invalid_client_metadata", "client_name is required")
    redirect_uris = body.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        raise Invalid("invalid_redirect_uri", "redirect_uris must be a non-empty array")
    for uri in redirect_uris:
        if not url_ok_for_registration(uri):
            raise Invalid(
                "invalid_redirect_uri",
                f"redirect_uri {uri!r} must be https (http only on loopback)",
            )
    for field in ("initiate_login_uri", "jwks_uri"):
        if not url_ok_for_registration(body.get(field)):
            raise Invalid(
                "invalid_client_metadata", f"{field} must be an https URL (http only on loopback)"
            )
    scope = body.get("scope", "")
    if not isinstance(scope, str):
        raise Invalid("invalid_client_metadata", "scope must be a space-separated string")
    unknown = [s for s in scope.split() if s not in C.ALL_SCOPES]
    if unknown:
        raise Invalid("invalid_client_metadata", f"unsupported scopes: {unknown}")
    tool = body.get(C.TOOL_CONFIGURATION)
    if not isinstance(tool, dict):
        raise Invalid("invalid_client_metadata", f"{C.TOOL_CONFIGURATION} object is required")
    domain = tool.get("domain")
    if not isinstance(domain, str) or not domain or "/" in domain:
        raise Invalid(
            "invalid_client_metadata", "domain is required (host, optionally :port, no scheme)"
        )
    secondary = tool.get("secondary_domains", [])
    if not isinstance(secondary, list) or not all(isinstance(d, str) for d in secondary):
        raise Invalid("invalid_client_metadata", "secondary_domains must be an array of strings")
    domains = [domain, *secondary]
    if not url_ok_for_registration(tool.get("target_link_uri")):
        raise Invalid(
            "invalid_client_metadata",
            "target_link_uri must be an https URL (http only on loopback)",
        )
    for url in [body["initiate_login_uri"], *redirect_uris, tool["target_link_uri"]]:
        if not _host_ok(url, domains):
            raise Invalid(
                "invalid_client_metadata", f"{url!r} is not under the tool's domain {domains}"
            )
    claims = tool.get("claims", [])
    if not isinstance(claims, list) or not all(isinstance(c, str) for c in claims):
        raise Invalid("invalid_client_metadata", "claims must be an array of strings")
    custom = tool.get("custom_parameters", {})
    if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
        raise Invalid("invalid_client_metadata", "custom_parameters values must be strings")
    messages = tool.get("messages", [])
    if not isinstance(messages, list):
        raise Invalid("invalid_client_metadata", "messages must be an array")
    for message in messages:
        if not isinstance(message, dict) or message.get("type") not in C.MESSAGE_TYPES:
            raise Invalid(
                "invalid_client_metadata",
                f"unsupported message {message!r}; supported: {C.MESSAGE_TYPES}",
            )
        if "target_link_uri" in message and not (
            url_ok_for_registration(message["target_link_uri"])
            and _host_ok(message["target_link_uri"], domains)
        ):
            raise Invalid(
                "invalid_client_metadata", "message target_link_uri must be under the tool's domain"
            )
        msg_custom = message.get("custom_parameters", {})
        if not isinstance(msg_custom, dict) or not all(
            isinstance(v, str) for v in msg_custom.values()
        ):
            raise Invalid(
                "invalid_client_metadata", "message custom_parameters values must be strings"
            )
    return body


def register(app: Flask, lms: TestPlatform) -> None:
    def token_ok(consume: bool) -> bool:
        token = bearer_token(request)
        with lms.lock:
            expiry = lms.registration_tokens.get(token or "")
            if expiry is None or expiry < time.time():
                return False
            if consume:
                del lms.registration_tokens[token or ""]
        return True

    @app.get("/.well-known/openid-configuration")
    def openid_config() -> Response:
        if not token_ok(consume=False):
            return error(
                401,
                "invalid_token",
                "a valid registration_token is required as Bearer token",
                {"WWW-Authenticate": 'Bearer realm="lms", error="invalid_token"'},
            )
        return json_response(openid_configuration(lms))

    @app.post("/api/registration")
    def registration_endpoint() -> Response:
        body = parse_json_body(request)
        if not token_ok(consume=False):
            lms.registrations.append(RegistrationRecord(body, False, "invalid registration token"))
            return error(
                401,
                "invalid_token",
                "a valid, unused registration_token is required as Bearer token",
                {"WWW-Authenticate": 'Bearer realm="lms", error="invalid_token"'},
            )
        if media_type(request) != "application/json":
            lms.registrations.append(RegistrationRecord(body, False, "content type"))
            return error(400, "invalid_client_metadata", "Content-Type must be application/json")
        try:
            validate(body)
        except Invalid as exc:
            lms.registrations.append(RegistrationRecord(body, False, str(exc)))
            return error(400, exc.code, str(exc))
        if not token_ok(consume=True):
            return error(401, "invalid_token", "registration token already used")
        tool = body[C.TOOL_CONFIGURATION]
        with lms.lock:
            n = lms._next_dyn
            lms._next_dyn += 1
        client_id, deployment_id = f"dyn-client-{n}", f"dyn-dep-{n}"
        deep_link_url = next(
            (
                m.get("target_link_uri")
                for m in tool.get("messages", [])
                if m.get("type") == C.DEEP_LINKING_REQUEST
            ),
            None,
        )
        lms.register_tool(
            client_id,
            body["initiate_login_uri"],
            body["redirect_uris"],
            body["jwks_uri"],
            tool["target_link_uri"],
            [deployment_id],
            body.get("scope", "").split(),
            jwks=None,
            deep_link_url=deep_link_url,
            name=body["client_name"],
            custom=tool.get("custom_parameters", {}),
            source="dynamic",
        )
        response = dict(body)
        response["client_id"] = client_id
        response[C.TOOL_CONFIGURATION] = {**tool, "deployment_id": deployment_id}
        lms.registrations.append(
            RegistrationRecord(body, True, None, response, client_id, deployment_id)
        )
        return json_response(response)

    @app.get("/admin/register")
    def registration_page() -> Response:
        tool_url = request.args.get("tool", "")
        config_url, token = lms.start_registration()
        src = with_query(tool_url, openid_configuration=config_url, registration_token=token)
        body = (
            "<header><h1>Strict Test LMS — Add an LTI tool</h1></header>"
            f'<iframe name="registration" title="Tool registration" src="{esc(src)}" '
            'style="width:100%;height:600px;border:1px solid #ccc"></iframe>'
            '<p id="status">Waiting for the tool…</p>'
            "<script>window.addEventListener('message', function (e) {"
            " if (!e.data || e.data.subject !== 'org.imsglobal.lti.close') { return; }"
            " document.getElementById('status').textContent = 'Registration closed';"
            f" fetch({script_json(lms.url + '/admin/register/closed')}, {{method: 'POST',"
            " headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({origin: e.origin, data: e.data})});"
            "});</script>"
        )
        return Response(page("Add tool", body), mimetype="text/html")

    @app.post("/admin/register/closed")
    def registration_closed() -> Response:
        data = parse_json_body(request)
        lms.registration_closed.append(data if isinstance(data, dict) else {"raw": data})
        return Response(status=204)
