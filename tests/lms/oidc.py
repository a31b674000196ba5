"""Launch preparation, the OIDC authorization endpoint and the platform JWKS."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from . import claims as C
from .model import AuthRequest, ClaimPath, LaunchPlan, LineItem, ToolRegistration
from .tamper import Tamper, apply_claims, remove_path, sign
from .web import error, esc, json_response, page

if TYPE_CHECKING:
    from .server import TestPlatform

_VARIABLE = re.compile(r"^\$[A-Za-z][A-Za-z0-9_.]*$")


def prepare_launch(
    lms: TestPlatform,
    *,
    client_id: str,
    deployment_id: str | None,
    user_id: str | None,
    context_id: str | None,
    message_type: str,
    resource_link_id: str | None,
    roles: Sequence[str] | None,
    locale: str | None,
    custom: Mapping[str, str] | None,
    ags: bool,
    nrps: bool,
    lineitem: LineItem | str | bool | None,
    lti_storage_target: str | None,
    claims_override: Mapping[str, Any] | None,
    remove_claims: Sequence[ClaimPath],
    tamper: Tamper | None,
    target_link_uri: str | None,
    resource_link_title: str | None,
    deep_linking_settings: Mapping[str, Any] | None,
    login_url: str | None,
) -> LaunchPlan:
    reg = lms.tools.get(client_id)
    if reg is None:
        raise KeyError(f"unknown client_id {client_id!r}; call register_tool first")
    if deployment_id is None:
        if not reg.deployment_ids:
            raise ValueError(f"tool {client_id!r} has no deployment")
        deployment_id = reg.deployment_ids[0]
    elif deployment_id not in reg.deployment_ids:
        raise ValueError(
            f"deployment {deployment_id!r} is not one of {client_id!r}'s; use add_deployment"
        )
    if user_id is None or user_id not in lms.users:
        raise KeyError(f"unknown user {user_id!r}; call add_user first")
    if message_type not in C.MESSAGE_TYPES:
        raise ValueError(f"message_type must be one of {C.MESSAGE_TYPES}")
    user = lms.users[user_id]
    ctx = None
    if context_id is not None:
        ctx = lms.contexts.get(context_id)
        if ctx is None:
            raise KeyError(f"unknown context {context_id!r}; call add_context first")
    if roles is None:
        if ctx is None:
            roles = []
        else:
            enrolment = lms.enrolments.get((ctx.id, user.id))
            if enrolment is None:
                raise ValueError(
                    f"user {user_id!r} is not enrolled in {context_id!r}; enrol or pass roles="
                )
            roles = enrolment.roles

    with lms.lock:
        link = None
        if message_type == C.RESOURCE_LINK_REQUEST:
            if not resource_link_id:
                # Stable per tool and course, so repeated launches hit the same link.
                resource_link_id = f"rl-{client_id}-{context_id or 'home'}"
            link = lms.add_resource_link(
                resource_link_id, context_id, client_id, resource_link_title
            )
        elif ctx is not None:
            ctx.tools.add(client_id)
        coupled = _coupled_lineitem(lms, reg, context_id, link.id if link else None, lineitem)

    if target_link_uri is None:
        if message_type == C.DEEP_LINKING_REQUEST:
            target_link_uri = reg.deep_link_url or reg.target_link_uri
        else:
            target_link_uri = (link.url if link else None) or reg.target_link_uri
    plan_id = lms.new_secret("plan")
    launch_locale = locale or user.locale or "en-US"

    claims: dict[str, Any] = {
        "iss": lms.issuer,
        "aud": client_id,
        "azp": client_id,
        "sub": user.id,
        C.MESSAGE_TYPE: message_type,
        C.VERSION: C.LTI_VERSION,
        C.DEPLOYMENT_ID: deployment_id,
        C.TARGET_LINK_URI: target_link_uri,
        C.ROLES: list(roles),
        C.LAUNCH_PRESENTATION: {
            "document_target": "iframe",
            "locale": launch_locale,
            "return_url": f"{lms.url}/course/return?plan={plan_id}",
        },
        C.TOOL_PLATFORM: {
            "guid": lms.guid,
            "name": lms.name,
            "product_family_code": "strict-test-lms",
            "version": "1.0",
            "contact_email": "admin@lms.test",
        },
        C.LIS: {"person_sourcedid": user.sourcedid or f"sis-{user.id}"},
    }
    for attr in ("name", "given_name", "family_name", "email", "picture", "locale"):
        value = getattr(user, attr)
        if value:
            claims[attr] = value
    if link is not None:
        rl: dict[str, Any] = {"id": link.id, "title": link.title}
        if link.description:
            rl["description"] = link.description
        claims[C.RESOURCE_LINK] = rl
    if ctx is not None:
        claims[C.CONTEXT] = {"id": ctx.id, "label": ctx.label, "title": ctx.title, "type": ctx.type}
        claims[C.LIS]["course_offering_sourcedid"] = f"sis-{ctx.id}"

    merged_custom: dict[str, str] = {
        **reg.custom,
        **(link.custom if link else {}),
        **(custom or {}),
    }
    if merged_custom:
        claims[C.CUSTOM] = {
            k: _substitute(v, lms, user, ctx, link, launch_locale) for k, v in merged_custom.items()
        }

    ags_scopes = [s for s in reg.scopes if s in C.AGS_SCOPES]
    if ags and ctx is not None and ags_scopes:
        endpoint: dict[str, Any] = {
            "scope": ags_scopes,
            "lineitems": lms.lineitems_url(ctx.id, client_id),
        }
        if coupled is not None:
            endpoint["lineitem"] = coupled.url
        claims[C.AGS_ENDPOINT] = endpoint
    if nrps and ctx is not None and C.SCOPE_NRPS in reg.scopes:
        claims[C.NRPS] = {
            "context_memberships_url": lms.memberships_url(ctx.id),
            "service_versions": ["2.0"],
        }

    if message_type == C.DEEP_LINKING_REQUEST:
        settings: dict[str, Any] = {
            "deep_link_return_url": lms.deep_link_return_url,
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": True,
            "accept_lineitem": True,
            "auto_create": True,
            "title": "Add an activity",
            "text": "Choose the content to add to the course",
            "data": lms.new_secret("dl-data"),
        }
        for key, value in (deep_linking_settings or {}).items():
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
        claims[C.DL_SETTINGS] = settings

    plan = LaunchPlan(
        plan_id=plan_id,
        client_id=client_id,
        deployment_id=deployment_id,
        user_id=user.id,
        context_id=context_id,
        message_type=message_type,
        login_hint=lms.new_secret("lh"),
        lti_message_hint=lms.new_secret("mh"),
        target_link_uri=target_link_uri,
        issuer=lms.issuer,
        auth_url=lms.auth_url,
        login_url=login_url or reg.login_url,
        claims=claims,
        claims_override=dict(claims_override or {}),
        remove_claims=list(remove_claims),
        tamper=tamper,
        lti_storage_target=lti_storage_target,
        resource_link_id=link.id if link else None,
    )
    with lms.lock:
        lms.plans[plan_id] = plan
    return plan


def _coupled_lineitem(
    lms: TestPlatform,
    reg: ToolRegistration,
    context_id: str | None,
    link_id: str | None,
    lineitem: LineItem | str | bool | None,
) -> LineItem | None:
    """The line item to announce in the launch (D2L rule: only when exactly one is coupled)."""
    if lineitem is False or context_id is None:
        return None
    if isinstance(lineitem, LineItem):
        return lineitem
    if isinstance(lineitem, str):
        found = lms.lineitem_by_url(lineitem)
        if found is None:
            raise KeyError(f"unknown line item URL {lineitem!r}")
        return found
    coupled = [
        li
        for li in lms.lineitems.values()
        if li.context_id == context_id
        and li.client_id == reg.client_id
        and link_id is not None
        and li.resource_link_id == link_id
    ]
    if lineitem is True and not coupled:
        title = lms.resource_links[link_id].title if link_id else "Grade"
        return lms._new_lineitem(
            context_id,
            reg.client_id,
            {"label": title, "scoreMaximum": 100, "resourceLinkId": link_id},
        )
    return coupled[0] if len(coupled) == 1 else None


def _substitute(value: str, lms: TestPlatform, user: Any, ctx: Any, link: Any, locale: str) -> str:
    """Custom-parameter substitution variables; unknown ones pass through unchanged."""
    if not isinstance(value, str) or not _VARIABLE.match(value):
        return value
    table: dict[str, str | None] = {
        "$User.id": user.id,
        "$Person.name.full": user.name,
        "$Person.name.given": user.given_name,
        "$Person.name.family": user.family_name,
        "$Person.email.primary": user.email,
        "$Person.sourcedId": user.sourcedid or f"sis-{user.id}",
        "$Context.id": ctx.id if ctx else None,
        "$Context.title": ctx.title if ctx else None,
        "$Context.label": ctx.label if ctx else None,
        "$ResourceLink.id": link.id if link else None,
        "$ResourceLink.title": link.title if link else None,
        "$Message.locale": locale,
        "$ToolPlatformInstance.guid": lms.guid,
    }
    found = table.get(value)
    return found if found is not None else value


def _final_claims(lms: TestPlatform, plan: LaunchPlan, nonce: str) -> dict[str, Any]:
    now = int(time.time())
    claims = dict(plan.claims)
    claims.update({"nonce": nonce, "iat": now, "exp": now + lms.id_token_lifetime})
    claims.update(plan.claims_override)
    for path in plan.remove_claims:
        remove_path(claims, path)
    if plan.tamper is not None:
        claims = apply_claims(claims, plan.tamper, now, lms.id_token_lifetime)
    return claims


def _validate(
    lms: TestPlatform, params: Mapping[str, str]
) -> tuple[str, str, LaunchPlan | None, ToolRegistration | None]:
    """('', '', plan, reg) when valid, else (error code, description, None, reg)."""
    client_id = params.get("client_id", "")
    reg = lms.tools.get(client_id)
    if reg is None:
        return "unauthorized_client", f"unknown client_id {client_id!r}", None, None
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in reg.redirect_uris:
        return (
            "invalid_request",
            f"redirect_uri {redirect_uri!r} is not registered for this client",
            None,
            reg,
        )
    if "openid" not in params.get("scope", "").split():
        return "invalid_scope", "scope must be 'openid'", None, reg
    if params.get("response_type") != "id_token":
        return "unsupported_response_type", "response_type must be 'id_token'", None, reg
    if params.get("response_mode") != "form_post":
        return "invalid_request", "response_mode must be 'form_post'", None, reg
    if lms.require_prompt_none and params.get("prompt") != "none":
        return "invalid_request", "prompt must be 'none'", None, reg
    if not params.get("nonce"):
        return "invalid_request", "nonce is required", None, reg
    if not params.get("state"):
        return "invalid_request", "state is required", None, reg
    login_hint = params.get("login_hint", "")
    message_hint = params.get("lti_message_hint", "")
    if not login_hint:
        return "invalid_request", "login_hint is required", None, reg
    if not message_hint:
        return "invalid_request", "lti_message_hint is required", None, reg
    for plan in lms.plans.values():
        if plan.login_hint == login_hint:
            if plan.lti_message_hint != message_hint:
                return "invalid_request", "lti_message_hint does not match login_hint", None, reg
            if plan.client_id != client_id:
                return "invalid_request", "client_id does not match the launch", None, reg
            if plan.used:
                return "invalid_request", "login_hint/lti_message_hint already used", None, reg
            return "", "", plan, reg
    return "login_required", "login_hint is not a user session this platform knows", None, reg


def _form_post_page(action: str, fields: Mapping[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items()
    )
    body = (
        f'<form id="lti_form" method="post" action="{esc(action)}">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        '<script>document.getElementById("lti_form").submit();</script>'
    )
    return page("Launching…", body)


def register(app: Flask, lms: TestPlatform) -> None:
    @app.route("/oidc/auth", methods=["GET", "POST"])
    def oidc_auth() -> Response:
        source = request.form if request.method == "POST" else request.args
        params = {k: source.get(k, "") for k in source}
        with lms.lock:
            code, description, plan, _reg = _validate(lms, params)
            record = AuthRequest(
                request.method,
                params,
                ok=not code,
                error=description or None,
                plan_id=plan.plan_id if plan else None,
            )
            lms.auth_requests.append(record)
            if code or plan is None:
                return error(400, code, description)
            plan.used = True
            plan.nonce = params["nonce"]
            plan.state = params["state"]
            claims = _final_claims(lms, plan, params["nonce"])
            plan.issued_claims = claims
            plan.id_token = sign(claims, lms.keys, plan.tamper)
        fields = {"id_token": plan.id_token, "state": params["state"]}
        if plan.lti_storage_target:
            fields["lti_storage_target"] = plan.lti_storage_target
        resp = Response(_form_post_page(params["redirect_uri"], fields), mimetype="text/html")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/.well-known/jwks.json")
    def platform_jwks() -> Response:
        with lms.lock:
            lms.jwks_requests += 1
        return json_response(lms.keys.jwks())
