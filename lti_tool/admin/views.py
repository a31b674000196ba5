"""Course-admin pages: overview, module configuration, learner progress, grade resends, audit."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_datetime, format_decimal, ngettext
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .. import db, passback
from ..content import Course, get_course
from ..i18n import LANGUAGE_NAMES, current_language
from ..identity.models import LmsContext
from ..web import error_page
from . import audit, report
from . import settings as cfg
from .access import course_admin_required, current_admin, current_context

bp = Blueprint("admin", __name__, url_prefix="/admin")

SAVED, UNCHANGED, RESENT = "saved", "unchanged", "resent"


def _t(course: Course, value: dict[str, str]) -> str:
    lang = current_language()
    return value.get(lang) or value.get(course.languages[0], "")


def _context() -> LmsContext:
    """The launch's LMS course; without one, the request ends with a clear 400 page."""
    ctx = current_context()
    if ctx is None:
        abort(make_response(error_page(
            400,
            _("Open this page from an LMS course"),
            _("Course administration belongs to an LMS course. Open the tool from your course "
              "in the LMS and try again."),
        )))
    return ctx


def _render(template: str, ctx: LmsContext, course: Course, **extra: Any) -> str:
    return render_template(
        template,
        ctx=ctx,
        course=course,
        t=lambda v: _t(course, v),
        fmt_cecs=cfg.cecs_text,
        fmt_decimal=format_decimal,
        fmt_datetime=lambda v: format_datetime(v, "medium") if v else "",
        language_names=LANGUAGE_NAMES,
        **extra,
    )


@bp.get("/")
@course_admin_required
def home() -> Any:
    ctx = _context()
    course = get_course()
    s = db.session()
    settings = cfg.load(s, ctx.id, course, current_language())
    links = report.context_links(s, ctx.id)
    titles = {m.id: _t(course, m.title) for m in course.modules}
    return _render("admin/home.html", ctx, course, settings=settings, links=links, nav="home",
                   module_titles=titles)


# ----------------------------------------------------------------------------- modules


@bp.route("/modules", methods=["GET", "POST"])
@course_admin_required
def modules() -> Any:
    ctx = _context()
    course = get_course()
    s = db.session()
    current = cfg.load(s, ctx.id, course, current_language())
    if request.method == "GET":
        return _page(ctx, course, current, current, {}, request.args.get("done"))
    parsed = cfg.parse(request.form, request.form.getlist, course, current)
    if not parsed.ok or parsed.settings is None:
        shown = _as_submitted(course, current)
        return _page(ctx, course, current, shown, parsed.errors, None), 422
    new = parsed.settings
    expected = _int(request.form.get("version"), -1)
    diff = cfg.changes(current, new)
    if expected != current.version:
        return _conflict(ctx, course, current)
    if not diff:
        return redirect(url_for("admin.modules", done=UNCHANGED), code=303)
    inst = current_admin()
    try:
        version = cfg.save(
            s, context_pk=ctx.id, course=course, new=new, expected_version=expected,
            actor_id=inst.id,
        )
    except (cfg.Conflict, IntegrityError):
        s.rollback()
        return _conflict(ctx, course, cfg.load(s, ctx.id, course, current_language()))
    audit.record(
        s, action="configure", context_pk=ctx.id, instructor=inst,
        changes={"version": version, "fields": diff},
    )
    s.commit()
    return redirect(url_for("admin.modules", done=SAVED), code=303)


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw or "")
    except ValueError:
        return default


def _conflict(ctx: LmsContext, course: Course, current: cfg.CourseSettings) -> tuple[str, int]:
    errors = {
        "form": _("Someone else saved the configuration while you were editing it. Nothing "
                  "was changed. The page now shows their version; make your changes again.")
    }
    return _page(ctx, course, current, current, errors, None), 409


class _Submitted:
    """The form's values as typed, so that a refused form is shown again unchanged."""

    def __init__(self, course: Course, current: cfg.CourseSettings) -> None:
        self.form = request.form
        self.course = course
        self.current = current

    def position(self, module_id: str) -> str:
        return self.form.get(f"position-{module_id}", "")

    def checked(self, name: str) -> bool:
        return self.form.get(name) == "on"

    def value(self, name: str) -> str:
        return self.form.get(name, "")

    def languages(self) -> list[str]:
        return self.form.getlist("languages")


class _Stored(_Submitted):
    """The stored settings presented through the same interface as a submitted form."""

    def __init__(self, course: Course, current: cfg.CourseSettings) -> None:
        self.course = course
        self.current = current
        order = list(current.module_order)
        values: dict[str, str] = {}
        for m in course.modules:
            values[f"position-{m.id}"] = str(order.index(m.id) + 1)
            if m.id in current.offered:
                values[f"offered-{m.id}"] = "on"
            if m.id in current.required:
                values[f"required-{m.id}"] = "on"
        values["pass_mark_percent"] = str(current.pass_mark_percent)
        values["cooldown_minutes"] = str(current.cooldown_seconds // 60)
        values["course_language"] = current.course_language
        values["starts_on"] = current.starts_on.isoformat() if current.starts_on else ""
        values["ends_on"] = current.ends_on.isoformat() if current.ends_on else ""
        if current.allow_assistants:
            values["allow_assistants"] = "on"
        self.values = values

    def position(self, module_id: str) -> str:
        return self.values[f"position-{module_id}"]

    def checked(self, name: str) -> bool:
        return self.values.get(name) == "on"

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def languages(self) -> list[str]:
        return list(self.current.languages)


def _as_submitted(course: Course, current: cfg.CourseSettings) -> _Submitted:
    return _Submitted(course, current)


def _page(
    ctx: LmsContext,
    course: Course,
    current: cfg.CourseSettings,
    shown: cfg.CourseSettings | _Submitted,
    errors: dict[str, str],
    done: str | None,
) -> str:
    form = shown if isinstance(shown, _Submitted) else _Stored(course, shown)
    ordered = sorted(
        course.modules,
        key=lambda m: (_int(form.position(m.id), 999), [x.id for x in course.modules].index(m.id)),
    )
    notice = {
        SAVED: _("The configuration was saved. It applies to quiz attempts started from now on; "
                 "what learners have already completed is kept."),
        UNCHANGED: _("Nothing was changed."),
    }.get(done or "")
    return _render(
        "admin/modules.html", ctx, course, current=current, form=form, modules=ordered,
        errors=errors, notice=notice, nav="modules",
        total_cecs=float(course.cecs), offered_cecs=current.offered_cecs(course),
        required_cecs=current.required_cecs(course),
    )


# ----------------------------------------------------------------------------- learners


def _filters() -> report.Filters:
    return report.Filters.from_args(request.args)


@bp.get("/learners")
@course_admin_required
def learners() -> Any:
    ctx = _context()
    course = get_course()
    s = db.session()
    settings = cfg.load(s, ctx.id, course, current_language())
    filters = _filters()
    rep = report.build(
        s, ctx=ctx, course=course, settings=settings, filters=filters,
        refresh=request.args.get("refresh") == "1",
    )
    notice = None
    if request.args.get("done") == RESENT:
        count = _int(request.args.get("count"), 0)
        notice = ngettext(
            "%(num)s score was queued to be sent to the LMS gradebook again.",
            "%(num)s scores were queued to be sent to the LMS gradebook again.",
            count,
        ) if count else _("There was no score to send again.")
    return _render(
        "admin/learners.html", ctx, course, report=rep, filters=filters, notice=notice,
        state_labels=report.STATE_LABELS, passback_labels=report.PASSBACK_LABELS,
        lms_status_labels=report.LMS_STATUS_LABELS, sorts=report.SORTS, nav="learners",
        settings=settings,
    )


@bp.get("/learners.csv")
@course_admin_required
def learners_csv() -> Any:
    ctx = _context()
    course = get_course()
    s = db.session()
    settings = cfg.load(s, ctx.id, course, current_language())
    rep = report.build(s, ctx=ctx, course=course, settings=settings, filters=_filters())
    lang = current_language()
    body = report.csv_bytes(rep, lang)
    resp = Response(body, mimetype="text/csv")
    resp.headers["Content-Type"] = "text/csv; charset=utf-8"
    # A language-neutral ASCII name: every browser and Excel version accepts it as it is.
    resp.headers["Content-Disposition"] = f'attachment; filename="spin-cec-progress-{ctx.id}.csv"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/learners/<int:instructor_id>/resend")
@course_admin_required
def resend_learner(instructor_id: int) -> Any:
    ctx = _context()
    s = db.session()
    count = passback.resend_learner(s, context_pk=ctx.id, instructor_id=instructor_id)
    audit.record(
        s, action="resend_learner", context_pk=ctx.id, instructor=current_admin(),
        changes={"learner": instructor_id, "queued": count},
    )
    s.commit()
    return _back_to_report(count)


@bp.post("/learners/resend")
@course_admin_required
def resend_all() -> Any:
    ctx = _context()
    s = db.session()
    count = passback.resend_context(s, context_pk=ctx.id)
    audit.record(
        s, action="resend_all", context_pk=ctx.id, instructor=current_admin(),
        changes={"queued": count},
    )
    s.commit()
    return _back_to_report(count)


def _back_to_report(count: int) -> Response:
    args: dict[str, Any] = {
        k: v
        for k, v in request.form.items()
        if k in ("q", "state", "passback", "who", "link", "sort", "dir") and v
    }
    args.update(done=RESENT, count=count)
    return redirect(url_for("admin.learners", **args), code=303)  # type: ignore[return-value]


# ----------------------------------------------------------------------------- audit


ACTION_LABELS = {
    "configure": lambda: _("Configuration changed"),
    "resend_learner": lambda: _("Grades sent again for one learner"),
    "resend_all": lambda: _("Grades sent again for everyone"),
    "deep_link": lambda: _("Content placed in the LMS course"),
}


@bp.get("/audit")
@course_admin_required
def audit_log() -> Any:
    ctx = _context()
    course = get_course()
    s = db.session()
    entries = audit.entries(s, context_pk=ctx.id)
    titles = {m.id: _t(course, m.title) for m in course.modules}
    titles["course"] = _("The whole course")
    return _render(
        "admin/audit.html", ctx, course, entries=entries, nav="audit",
        action_label=lambda a: ACTION_LABELS[a]() if a in ACTION_LABELS else a,
        field_label=lambda f: str(cfg.FIELD_LABELS.get(f, f)),
        show=lambda v: _show(v, titles),
    )


def _show(value: Any, titles: dict[str, str]) -> str:
    if value is None or value == "":
        return _("(none)")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        shown = [titles.get(v, LANGUAGE_NAMES.get(v, v)) if isinstance(v, str) else str(v)
                 for v in value]
        return ", ".join(shown) if shown else _("(none)")
    if isinstance(value, str):
        return LANGUAGE_NAMES.get(value, value)
    return str(value)


def admin_home_url() -> str | None:
    """For the page header: the admin pages' address if this user may see them."""
    from .access import is_course_admin

    if not session.get("iid") or not session.get("ctx"):
        return None
    try:
        allowed = is_course_admin()
    except SQLAlchemyError:
        # Also rendered on error pages, perhaps because the database is down.
        return None
    return url_for("admin.home") if allowed else None
