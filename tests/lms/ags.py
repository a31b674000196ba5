"""Assignment and Grade Services 2.0: line items, scores (§3.4) and results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from . import claims as C
from .model import LineItem, Result, ScoreRecord, TokenRecord
from .oauth import guard
from .web import (
    accepts,
    error,
    insert_path,
    is_number,
    iso_instant,
    json_response,
    media_type,
    parse_json_body,
    with_query,
)

if TYPE_CHECKING:
    from .server import TestPlatform

ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")
READ_LINEITEMS = (C.SCOPE_LINEITEM, C.SCOPE_LINEITEM_READONLY)


def validate_lineitem(
    lms: TestPlatform, body: Any, context_id: str, client_id: str, url: str | None = None
) -> str | None:
    """Reason the line item JSON is unacceptable, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if url is not None and "id" in body and body["id"] != url:
        return "id does not match the line item URL"
    label = body.get("label")
    if not isinstance(label, str) or not label.strip():
        return "label is required and must be a non-empty string"
    score_max = body.get("scoreMaximum")
    if not is_number(score_max) or score_max <= 0:
        return "scoreMaximum is required and must be a number > 0"
    for name in ("resourceId", "tag", "resourceLinkId"):
        if name in body and not isinstance(body[name], str):
            return f"{name} must be a string"
    rlid = body.get("resourceLinkId")
    if rlid is not None:
        link = lms.resource_links.get(rlid)
        if link is None or link.context_id != context_id or link.client_id != client_id:
            return f"resourceLinkId {rlid!r} is not a resource link of this tool in this context"
    for name in ("startDateTime", "endDateTime"):
        if name in body and iso_instant(body[name]) is None:
            return f"{name} must be an ISO 8601 date-time with a time zone"
    if "gradesReleased" in body and not isinstance(body["gradesReleased"], bool):
        return "gradesReleased must be a boolean"
    return None


def validate_score(lms: TestPlatform, body: Any, context_id: str) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    user_id = body.get("userId")
    if not isinstance(user_id, str) or not user_id:
        return "userId is required"
    if iso_instant(body.get("timestamp")) is None:
        return (
            "timestamp is required: ISO 8601 with a time zone, e.g. 2024-03-01T10:00:00.123+00:00"
        )
    if body.get("activityProgress") not in ACTIVITY_PROGRESS:
        return f"activityProgress must be one of {ACTIVITY_PROGRESS}"
    if body.get("gradingProgress") not in GRADING_PROGRESS:
        return f"gradingProgress must be one of {GRADING_PROGRESS}"
    if "scoreGiven" in body and body["scoreGiven"] is not None:
        given = body["scoreGiven"]
        if not is_number(given) or given < 0:
            return "scoreGiven must be a number >= 0"
        if "scoreMaximum" not in body:
            return "scoreMaximum is required when scoreGiven is present"
    maximum = body.get("scoreMaximum")
    if maximum is not None and (not is_number(maximum) or maximum <= 0):
        return "scoreMaximum must be a number > 0"
    if body.get("comment") is not None and not isinstance(body["comment"], str):
        return "comment must be a string"
    submission = body.get("submission")
    if submission is not None:
        if not isinstance(submission, dict):
            return "submission must be an object"
        for name in ("startedAt", "submittedAt"):
            if name in submission and iso_instant(submission[name]) is None:
                return f"submission.{name} must be ISO 8601 with a time zone"
    if not lms.is_gradable(context_id, user_id):
        return (
            f"Incorrect score received: user {user_id!r} is not a gradable member "
            "(learner) of the context"
        )
    return None


def apply_score(lms: TestPlatform, li: LineItem, body: dict[str, Any], client_id: str) -> str:
    """Store a validated score; returns 'applied', 'stale' or 'duplicate'."""
    user_id = body["userId"]
    record = ScoreRecord(li.id, li.url, user_id, body, body["timestamp"], client_id)
    instant = iso_instant(body["timestamp"])
    assert instant is not None
    with lms.lock:
        current = lms.results.get((li.id, user_id))
        if current is not None:
            last = iso_instant(current.timestamp)
            assert last is not None
            # AGS §3.4: never let an older (or equal) timestamp overwrite the result.
            if instant == last:
                lms.duplicate_timestamps.append(record)
                return "duplicate"
            if instant < last:
                lms.stale_scores.append(record)
                return "stale"
        given = body.get("scoreGiven")
        maximum = body.get("scoreMaximum")
        scaled = None
        if given is not None and maximum:
            scaled = given / maximum * li.score_maximum
        lms.results[(li.id, user_id)] = Result(
            lineitem_id=li.id,
            lineitem_url=li.url,
            user_id=user_id,
            score_given=given,
            score_maximum=maximum,
            result_score=scaled,
            result_maximum=li.score_maximum,
            activity_progress=body["activityProgress"],
            grading_progress=body["gradingProgress"],
            comment=body.get("comment"),
            timestamp=body["timestamp"],
            score=body,
        )
        lms.scores.append(record)
    return "applied"


def result_json(li: LineItem, result: Result) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": insert_path(li.url, f"/results/{result.user_id}"),
        "scoreOf": li.url,
        "userId": result.user_id,
        "resultMaximum": result.result_maximum,
    }
    if result.result_score is not None:
        out["resultScore"] = result.result_score
    if result.comment is not None:
        out["comment"] = result.comment
    return out


def page_slice(
    items: list[Any], default_size: int
) -> tuple[list[Any], str | None, Response | None]:
    """Slice by ?limit=&page=; returns (items, next URL, error)."""
    try:
        limit = int(request.args.get("limit", default_size))
        page_no = int(request.args.get("page", 1))
    except ValueError:
        return [], None, error(400, "invalid_request", "limit and page must be integers")
    if limit < 1 or page_no < 1:
        return [], None, error(400, "invalid_request", "limit and page must be >= 1")
    # The platform's page size caps the tool's limit, as the specs allow, to force paging.
    limit = min(limit, default_size)
    start = (page_no - 1) * limit
    chunk = items[start : start + limit]
    next_url = None
    if start + limit < len(items):
        args = request.args.to_dict()
        args["limit"], args["page"] = str(limit), str(page_no + 1)
        next_url = with_query(request.base_url, **args)
    return chunk, next_url, None


def register(app: Flask, lms: TestPlatform) -> None:
    def check_url(context_id: str, token: TokenRecord) -> Response | None:
        """Service URLs carry ?type_id=; tools must keep the query string intact."""
        type_id = request.args.get("type_id")
        if type_id is not None and ("/" in type_id or "?" in type_id):
            return error(
                400,
                "invalid_request",
                f"malformed query string (type_id={type_id!r}): insert path segments such as "
                "/scores before the query string and join extra parameters with '&'",
            )
        reg = lms.tools[token.client_id]
        if type_id != str(reg.type_id):
            return error(
                404,
                "not_found",
                "unknown service URL: the type_id query parameter is missing or wrong",
            )
        ctx = lms.contexts.get(context_id)
        if ctx is None or token.client_id not in ctx.tools:
            return error(404, "not_found", "unknown context for this tool")
        return None

    def find_lineitem(context_id: str, li_id: int, token: TokenRecord) -> LineItem | Response:
        li = lms.lineitems.get(li_id)
        if li is None or li.context_id != context_id or li.client_id != token.client_id:
            return error(404, "not_found", "unknown line item")
        return li

    def log(kind: str, status: int, token: TokenRecord | None) -> None:
        lms.service_requests.append(
            (kind, request.method, token.client_id if token else "", status)
        )

    @app.route("/api/ags/<context_id>/lineitems", methods=["GET", "POST"])
    def lineitems(context_id: str) -> Response:
        scopes = READ_LINEITEMS if request.method == "GET" else (C.SCOPE_LINEITEM,)
        token, fail = guard(lms, request, "lineitems", scopes)
        if fail is not None or token is None:
            log("lineitems", fail.status_code if fail else 500, None)
            return fail or error(500, "server_error", "no token")
        bad = check_url(context_id, token)
        if bad is not None:
            log("lineitems", bad.status_code, token)
            return bad
        if request.method == "POST":
            if media_type(request) != C.MT_LINEITEM:
                log("lineitems", 415, token)
                return error(415, "invalid_request", f"Content-Type must be {C.MT_LINEITEM}")
            body = parse_json_body(request)
            reason = validate_lineitem(lms, body, context_id, token.client_id)
            if reason:
                log("lineitems", 400, token)
                return error(400, "invalid_request", reason)
            with lms.lock:
                li = lms._new_lineitem(context_id, token.client_id, body)
            log("lineitems", 201, token)
            return json_response(li.to_json(), 201, C.MT_LINEITEM, {"Location": li.url})
        if not accepts(request, C.MT_LINEITEM_CONTAINER):
            return error(406, "not_acceptable", f"this endpoint produces {C.MT_LINEITEM_CONTAINER}")
        items = [
            li
            for li in lms.lineitems.values()
            if li.context_id == context_id and li.client_id == token.client_id
        ]
        filters = {
            "resource_link_id": "resource_link_id",
            "resource_id": "resource_id",
            "tag": "tag",
        }
        for param, attr in filters.items():
            if param in request.args:
                items = [li for li in items if getattr(li, attr) == request.args[param]]
        chunk, next_url, fail = page_slice(
            sorted(items, key=lambda li: li.id), lms.lineitems_page_size
        )
        if fail is not None:
            return fail
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
        log("lineitems", 200, token)
        return json_response([li.to_json() for li in chunk], 200, C.MT_LINEITEM_CONTAINER, headers)

    @app.route(
        "/api/ags/<context_id>/lineitems/<int:li_id>/lineitem",
        methods=["GET", "PUT", "DELETE", "POST"],
    )
    def lineitem(context_id: str, li_id: int) -> Response:
        if request.method == "POST":
            with lms.lock:
                lms.score_requests += 1  # a score POST to a badly built URL still counts
        scopes = READ_LINEITEMS if request.method == "GET" else (C.SCOPE_LINEITEM,)
        if request.method == "POST":
            scopes = (C.SCOPE_SCORE, C.SCOPE_LINEITEM)
        token, fail = guard(lms, request, "lineitems", scopes)
        if fail is not None or token is None:
            return fail or error(500, "server_error", "no token")
        bad = check_url(context_id, token)
        if bad is not None:
            return bad
        if request.method == "POST":
            return error(
                405,
                "method_not_allowed",
                "POST scores to <lineitem URL path>/scores (keep the query string after it)",
            )
        li = find_lineitem(context_id, li_id, token)
        if isinstance(li, Response):
            return li
        if request.method == "GET":
            if not accepts(request, C.MT_LINEITEM):
                return error(406, "not_acceptable", f"this endpoint produces {C.MT_LINEITEM}")
            return json_response(li.to_json(), 200, C.MT_LINEITEM)
        if request.method == "DELETE":
            with lms.lock:
                lms.lineitems.pop(li.id, None)
                for key in [k for k in lms.results if k[0] == li.id]:
                    lms.results.pop(key)
            return Response(status=204)
        if media_type(request) != C.MT_LINEITEM:
            return error(415, "invalid_request", f"Content-Type must be {C.MT_LINEITEM}")
        body = parse_json_body(request)
        reason = validate_lineitem(lms, body, context_id, token.client_id, url=li.url)
        if reason:
            return error(400, "invalid_request", reason)
        with lms.lock:
            li.label, li.score_maximum = body["label"], body["scoreMaximum"]
            li.resource_id, li.tag = body.get("resourceId"), body.get("tag")
            li.resource_link_id = body.get("resourceLinkId", li.resource_link_id)
            li.start_date_time, li.end_date_time = (
                body.get("startDateTime"),
                body.get("endDateTime"),
            )
            li.grades_released = body.get("gradesReleased")
        return json_response(li.to_json(), 200, C.MT_LINEITEM)

    @app.post("/api/ags/<context_id>/lineitems/<int:li_id>/lineitem/scores")
    def scores(context_id: str, li_id: int) -> Response:
        with lms.lock:
            lms.score_requests += 1
        token, fail = guard(lms, request, "scores", (C.SCOPE_SCORE,))
        if fail is not None or token is None:
            log("scores", fail.status_code if fail else 500, None)
            return fail or error(500, "server_error", "no token")
        bad = check_url(context_id, token)
        if bad is not None:
            log("scores", bad.status_code, token)
            return bad
        li = find_lineitem(context_id, li_id, token)
        if isinstance(li, Response):
            log("scores", 404, token)
            return li
        if media_type(request) != C.MT_SCORE:
            lms.rejected_scores.append((request.get_data(as_text=True), "content type"))
            log("scores", 415, token)
            return error(415, "invalid_request", f"Content-Type must be {C.MT_SCORE}")
        body = parse_json_body(request)
        reason = validate_score(lms, body, context_id)
        if reason:
            lms.rejected_scores.append((body, reason))
            log("scores", 400, token)
            return error(400, "invalid_request", reason)
        apply_score(lms, li, body, token.client_id)
        log("scores", lms.score_status, token)
        if lms.score_status == 204:
            return Response(status=204)
        return json_response(
            {"resultUrl": insert_path(li.url, f"/results/{body['userId']}")}, lms.score_status
        )

    @app.get("/api/ags/<context_id>/lineitems/<int:li_id>/lineitem/results")
    def results(context_id: str, li_id: int) -> Response:
        token, fail = guard(lms, request, "results", (C.SCOPE_RESULT_READONLY,))
        if fail is not None or token is None:
            return fail or error(500, "server_error", "no token")
        bad = check_url(context_id, token)
        if bad is not None:
            return bad
        li = find_lineitem(context_id, li_id, token)
        if isinstance(li, Response):
            return li
        if not accepts(request, C.MT_RESULT_CONTAINER):
            return error(406, "not_acceptable", f"this endpoint produces {C.MT_RESULT_CONTAINER}")
        found = [r for (lid, _u), r in sorted(lms.results.items()) if lid == li.id]
        if "user_id" in request.args:
            found = [r for r in found if r.user_id == request.args["user_id"]]
        chunk, next_url, fail = page_slice(found, lms.results_page_size)
        if fail is not None:
            return fail
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
        return json_response(
            [result_json(li, r) for r in chunk], 200, C.MT_RESULT_CONTAINER, headers
        )
