"""Names and Role Provisioning Services 2.0: the context membership container."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from . import claims as C
from .ags import page_slice
from .oauth import guard
from .web import accepts, error, json_response

if TYPE_CHECKING:
    from .server import TestPlatform


def register(app: Flask, lms: TestPlatform) -> None:
    @app.get("/api/nrps/<context_id>/memberships")
    def memberships(context_id: str) -> Response:
        token, fail = guard(lms, request, "nrps", (C.SCOPE_NRPS,))
        if fail is not None or token is None:
            lms.service_requests.append(("nrps", "GET", "", fail.status_code if fail else 500))
            return fail or error(500, "server_error", "no token")
        ctx = lms.contexts.get(context_id)
        if ctx is None or token.client_id not in ctx.tools:
            return error(404, "not_found", "unknown context for this tool")
        if not accepts(request, C.MT_MEMBERSHIP_CONTAINER):
            return error(
                406, "not_acceptable", f"this endpoint produces {C.MT_MEMBERSHIP_CONTAINER}"
            )
        rlid = request.args.get("rlid")
        if rlid is not None:
            link = lms.resource_links.get(rlid)
            if link is None or link.context_id != context_id or link.client_id != token.client_id:
                return error(
                    400,
                    "invalid_request",
                    f"rlid {rlid!r} is not a resource link of this tool here",
                )
        role = request.args.get("role")
        members: list[dict[str, Any]] = []
        for (ctx_id, user_id), enrolment in sorted(lms.enrolments.items()):
            if ctx_id != context_id:
                continue
            if role and not any(r == role or r.endswith("#" + role) for r in enrolment.roles):
                continue
            user = lms.users[user_id]
            member: dict[str, Any] = {
                "status": enrolment.status,
                "user_id": user.id,
                "roles": list(enrolment.roles),
            }
            for attr in ("name", "given_name", "family_name", "email", "picture"):
                value = getattr(user, attr)
                if value:
                    member[attr] = value
            member["lis_person_sourcedid"] = user.sourcedid or f"sis-{user.id}"
            members.append(member)
        chunk, next_url, fail = page_slice(members, lms.nrps_page_size)
        if fail is not None:
            return fail
        body = {
            "id": request.url,
            "context": {"id": ctx.id, "label": ctx.label, "title": ctx.title},
            "members": chunk,
        }
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
        lms.service_requests.append(("nrps", "GET", token.client_id, 200))
        return json_response(body, 200, C.MT_MEMBERSHIP_CONTAINER, headers)
