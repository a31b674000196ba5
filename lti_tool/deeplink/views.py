"""Deep Linking 2.0: the course admin picks what to place; the tool answers the platform.

The launch of an LtiDeepLinkingRequest ends here (lti/views.py redirects to `picker`). Its
claims are read back from the shared cache by the session's launch id, so any worker can answer.
A request is answered once: the platform accepts only one response per request.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request, session
from flask_babel import gettext as _

from .. import cache, db
from ..admin import audit, course_admin_required
from ..admin import settings as cfg
from ..admin.access import current_admin, current_context
from ..content import get_course
from ..i18n import LANGUAGE_NAMES, current_language
from ..lti import services
from ..lti.launch import CLAIM, LAUNCH_KEY
from ..lti.registry import to_registration
from ..web import error_page
from . import items as di

bp = Blueprint("deeplink", __name__, url_prefix="/deep-link")
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
ANSWERED_KEY = "deeplink:answered:"
RESOURCE_LINK = "ltiResourceLink"


def _request_claims() -> dict[str, Any] | tuple[str, int]:
    lid = session.get("lid")
    claims = cache.get(LAUNCH_KEY + str(lid)) if lid else None
    if not isinstance(claims, dict) or claims.get(CLAIM + "message_type") != (
        "LtiDeepLinkingRequest"
    ):
        return error_page(
            400,
            _("Start from your LMS"),
            _("This page opens when you add the course to your LMS course (content selection "
              "or deep linking). Start again from there."),
        )
    if not isinstance(claims.get(DL_SETTINGS), dict) or not isinstance(
        claims[DL_SETTINGS].get("deep_link_return_url"), str
    ):
        return error_page(400, _("Start from your LMS"), _("The LMS did not say where to return."))
    if cache.get(ANSWERED_KEY + str(lid)):
        return error_page(
            409,
            _("Content already sent"),
            _("Your choice was already sent to the LMS. To place more content, start the "
              "content selection again in your LMS."),
        )
    return claims


def _launch_url() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url.rstrip("/")
    return str(base) + "/lti/launch"


def _accept(dl: dict[str, Any]) -> tuple[bool, bool, bool]:
    """(resource links accepted, several items accepted, line items welcome)."""
    types = dl.get("accept_types")
    links_ok = isinstance(types, list) and RESOURCE_LINK in types
    multiple = dl.get("accept_multiple") in (True, "true")
    # DL 2.0 §4.4.1: absent means no assumption; only an explicit false asks us to leave them
    # out, and Blackboard makes a graded column only from a lineItem.
    lineitems = dl.get("accept_lineitem") not in (False, "false")
    return links_ok, multiple, lineitems


@bp.route("/", methods=["GET", "POST"])
@course_admin_required
def picker() -> Any:
    claims = _request_claims()
    if not isinstance(claims, dict):
        return claims
    dl: dict[str, Any] = claims[DL_SETTINGS]
    course = get_course()
    s = db.session()
    ctx = current_context()
    settings = cfg.load(s, ctx.id if ctx else None, course, current_language())
    links_ok, multiple, lineitems = _accept(dl)
    options = di.choices(course, settings) if links_ok else []
    errors: dict[str, str] = {}
    selection: list[str] = []
    lang = settings.course_language
    if request.method == "POST":
        cancel = request.form.get("action") == "cancel"
        selection = [x for x in request.form.getlist("item") if x in options]
        lang = request.form.get("language", lang)
        if lang not in course.languages:
            errors["language"] = _("Choose a language.")
        if not cancel and not selection:
            errors["item"] = _("Choose what to place in your LMS course.")
        if not cancel and len(selection) > 1 and not multiple:
            errors["item"] = _("Your LMS accepts one item at a time. Choose one.")
        if not errors or cancel:
            return _respond(claims, dl, settings, [] if cancel else selection, lang, lineitems,
                            ctx.id if ctx else None)
    body = render_template(
        "admin/deep_link.html",
        course=course,
        settings=settings,
        options=options,
        multiple=multiple,
        links_ok=links_ok,
        lineitems=lineitems,
        selection=selection,
        errors=errors,
        lang=lang,
        language_names=LANGUAGE_NAMES,
        t=lambda v: v.get(current_language()) or v.get(course.languages[0], ""),
        dl_title=dl.get("title") if isinstance(dl.get("title"), str) else None,
        fmt_cecs=cfg.cecs_text,
    )
    return (body, 422) if errors else body


def _respond(
    claims: dict[str, Any],
    dl: dict[str, Any],
    settings: cfg.CourseSettings,
    selection: list[str],
    lang: str,
    lineitems: bool,
    context_pk: int | None,
) -> Any:
    course = get_course()
    s = db.session()
    view = services().registry.by_pk(s, session.get("reg", 0))
    deployment_id = claims.get(CLAIM + "deployment_id")
    if view is None or not view.is_active or not isinstance(deployment_id, str):
        return error_page(
            400, _("Start from your LMS"), _("This LMS is no longer registered with the tool.")
        )
    resources = di.build(
        course, settings, selection, lang=lang, launch_url=_launch_url(),
        with_lineitem=lineitems,
    )
    msg = None
    if not resources:
        msg = _("Nothing was added.")
    token = di.Response(to_registration(view, s), deployment_id, dl, msg=msg).get_response_jwt(
        resources
    )
    lid = str(session.get("lid"))
    # Answered once: the request's data and nonce are single-use at the platform too.
    cache.set(ANSWERED_KEY + lid, True, int(current_app.config["SESSION_MAX_AGE"]))
    if context_pk is not None:
        audit.record(
            s, action="deep_link", context_pk=context_pk, instructor=current_admin(),
            changes={"placed": selection, "language": lang},
        )
        s.commit()
    return render_template(
        "admin/deep_link_return.html",
        return_url=dl["deep_link_return_url"],
        jwt=token,
        count=len(resources),
    )
