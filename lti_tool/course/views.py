"""Course pages reached after a launch: home, modules, lessons, quizzes and their results."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from flask_babel import format_date, format_percent
from markupsafe import escape

from .. import db, i18n
from ..admin import CourseSettings, is_course_admin
from ..content import Course, Lesson, Module, get_course
from ..content.render import link_lessons
from ..i18n import current_language, format_decimal, ngettext
from ..i18n import gettext as _
from ..identity.models import Instructor
from ..identity.service import LaunchIdentity
from ..learning import progress as prog
from ..learning import quiz, service
from ..lti import set_landing
from .cards import module_cards, module_list_key, progress_panel_key
from .setup import course_settings, is_open_for_session, language_policy

bp = Blueprint("course", __name__, url_prefix="/course")
F = TypeVar("F", bound=Callable[..., Any])


def launched(view: F) -> F:
    """Only for a session that came from an LTI launch."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not session.get("iid"):
            abort(401)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_instructor() -> Instructor:
    """The session's instructor, for reading (the launch's own page has it from the launch)."""
    launched_as = g.get("instructor")
    if launched_as is not None and launched_as.id == session["iid"]:
        return launched_as
    inst = db.session().get(Instructor, session["iid"])
    if inst is None:
        abort(401)
    return inst


# --------------------------------------------------------------------------- helpers


def text(course: Course, value: dict[str, Any]) -> Any:
    """A content text in the learner's language (the reference language if missing)."""
    return _in_language(course, current_language(), value)


def _in_language(course: Course, lang: str, value: dict[str, Any]) -> Any:
    return value.get(lang) if lang in value else value.get(course.languages[0], "")


def minutes_text(minutes: int) -> str:
    hours, rest = divmod(max(0, minutes), 60)
    if hours and rest:
        return _("%(hours)s h %(minutes)s min", hours=format_decimal(hours),
                 minutes=format_decimal(rest))
    if hours:
        return _("%(hours)s h", hours=format_decimal(hours))
    return _("%(minutes)s min", minutes=format_decimal(rest))


class Fmt:
    """Babel formatting in the learner's locale, for templates."""

    decimal = staticmethod(format_decimal)
    percent = staticmethod(format_percent)
    minutes = staticmethod(minutes_text)

    @staticmethod
    def date(value: Any, style: str = "long") -> str:
        return str(format_date(value, format=style))

    @staticmethod
    def cecs(value: Any) -> str:
        # Plural forms choose by an integer; a fractional amount reads as plural in en/de/es.
        n = int(value) if float(value).is_integer() else 2
        return str(ngettext("%(count)s SPIN® CEC", "%(count)s SPIN® CECs", n,
                            count=format_decimal(value)))


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"fmt": Fmt}


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    i18n.set_language_policy(state.app, language_policy)
    set_landing(state.app, landing)


def landing(ident: LaunchIdentity) -> ResponseReturnValue:
    """The first page of a resource-link launch, rendered in the launch's own response.

    The browser's address is then the launch URL; the page gives itself its real address
    (`page_url`, see base.html) so that reloading the LMS frame shows the page again instead
    of posting a spent id_token.
    """
    module_id = ident.module_id
    g.page_url = (
        url_for("course.module", module_id=module_id) if module_id else url_for("course.home")
    )
    g.instructor = ident.instructor
    g.settings_version, g.settings_version_ctx = ident.settings_version, ident.context_pk
    refused = _course_open()
    if refused is not None:
        return refused
    return module(module_id) if module_id else home()


@bp.before_request
def _course_open() -> tuple[str, int] | None:
    """Before its start date and after its end date the course is closed to learners."""
    if request.endpoint == "course.asset" or not session.get("iid"):
        return None  # public, or refused by `launched`
    today = db.utcnow().date()
    if is_open_for_session(today):
        return None
    settings = course_settings()
    course = get_course()
    if settings.starts_on is not None and today < settings.starts_on:
        message = _("This course opens on %(date)s. Please come back then.",
                    date=Fmt.date(settings.starts_on))
    else:
        message = _("This course closed on %(date)s. Your CEC record and your certificates "
                    "stay available.", date=Fmt.date(settings.ends_on or today))
    return _render("course/closed.html", course, message=message), 403


def _gradebook_on() -> bool:
    # Course admins (LMS teachers, and assistants where the course allows it) preview the
    # course; they are not graded.
    return not is_course_admin()


def _module_or_404(course: Course, module_id: str) -> Module:
    """A module this LMS context offers; any other is not there for the learner."""
    module = course.module(module_id)
    if module is None or module_id not in course_settings().offered:
        abort(404)
    return module


def _offered(course: Course) -> list[Module]:
    return course_settings().modules(course)


def _lesson_or_404(module: Module, lesson_id: str) -> Lesson:
    lesson = module.lesson(lesson_id)
    if lesson is None:
        abort(404)
    return lesson


def step_url(step: prog.Step) -> str:
    if step.lesson is None:
        return url_for("course.module", module_id=step.module.id, _anchor="quiz")
    return url_for("course.lesson", module_id=step.module.id, lesson_id=step.lesson.id)


def step_label(step: prog.Step) -> str:
    if step.lesson is None:
        return _("Module %(module)s, quiz", module=step.module_number)
    return _("Module %(module)s, lesson %(lesson)s", module=step.module_number,
             lesson=step.lesson_number)


def _neighbours(course: Course, module: Module, lesson: Lesson | None) -> tuple[
    prog.Step | None, prog.Step | None
]:
    all_steps = prog.steps(_offered(course))
    idx = next(
        i for i, st in enumerate(all_steps)
        if st.module.id == module.id
        and (st.lesson.id if st.lesson else None) == (lesson.id if lesson else None)
    )
    before = all_steps[idx - 1] if idx > 0 else None
    after = all_steps[idx + 1] if idx + 1 < len(all_steps) else None
    return before, after


def _render(template: str, course: Course, **ctx: Any) -> str:
    lang = current_language()  # once: `t` runs for every content text on the page
    return render_template(
        template, course=course, t=lambda v: _in_language(course, lang, v), step_url=step_url,
        step_label=step_label, **i18n.template_translators(), **ctx,
    )


# --------------------------------------------------------------------------- pages


@bp.get("/")
@launched
def home() -> str:
    course = get_course()
    inst = current_instructor()
    state = service.arrive(db.session(), inst, course, course_settings(),
                           link_pk=session.get("rl"), gradebook_on=_gradebook_on())
    lang = current_language()
    def t(value: dict[str, Any]) -> Any:
        return _in_language(course, lang, value)

    return _render(
        "course/home.html", course, instructor=inst, progress=state,
        cards=lambda: module_cards(state, t, Fmt.cecs), cards_key=module_list_key(state, t),
        panel_key=progress_panel_key(state),
    )


@bp.get("/module/<module_id>")
@launched
def module(module_id: str) -> str:
    course = get_course()
    mod = _module_or_404(course, module_id)
    inst = current_instructor()
    settings = course_settings()
    state = service.arrive(db.session(), inst, course, settings, link_pk=session.get("rl"),
                           gradebook_on=_gradebook_on())
    mp = state.module(mod.id)
    assert mp is not None
    cooldown = _cooldown_left(mp, settings)
    return _render("course/module.html", course, instructor=inst, progress=state, mp=mp,
                   module=mod, cooldown=cooldown, pass_mark=settings.pass_mark)


def _cooldown_left(mp: prog.ModuleProgress, settings: CourseSettings) -> int:
    seconds = settings.cooldown_seconds
    if not mp.last_submitted_at or seconds <= 0:
        return 0
    left = (mp.last_submitted_at + timedelta(seconds=seconds)) - db.utcnow()
    return max(0, int(left.total_seconds() + 0.999))


@bp.get("/module/<module_id>/lesson/<lesson_id>")
@launched
def lesson(module_id: str, lesson_id: str) -> str:
    course = get_course()
    mod = _module_or_404(course, module_id)
    les = _lesson_or_404(mod, lesson_id)
    inst = current_instructor()
    s = db.session()
    service.open_lesson(s, inst, course, les)
    state = service.load(s, inst, course, course_settings())
    mp = state.module(mod.id)
    assert mp is not None
    html = link_lessons(
        text(course, les.html),
        lambda m, le: url_for("course.lesson", module_id=m, lesson_id=le),
    )
    # A wide table scrolls inside its box on a phone; keyboard users must reach it (WCAG 2.1.1).
    html = html.replace(
        '<div class="table-wrap">',
        f'<div class="table-wrap" tabindex="0" role="region" aria-label="{escape(_("Table"))}">',
    )
    before, after = _neighbours(course, mod, les)
    number = mod.lessons.index(les) + 1
    return _render("course/lesson.html", course, module=mod, lesson=les, mp=mp, html=html,
                   before=before, after=after, number=number, progress=state,
                   done=les.id in mp.lessons_done)


@bp.post("/module/<module_id>/lesson/<lesson_id>/done")
@launched
def lesson_done(module_id: str, lesson_id: str) -> Response | tuple[str, int]:
    course = get_course()
    mod = _module_or_404(course, module_id)
    les = _lesson_or_404(mod, lesson_id)
    inst = current_instructor()
    service.finish_lesson(db.session(), inst, course, course_settings(), les,
                          link_pk=session.get("rl"), gradebook_on=_gradebook_on())
    if request.form.get("via") == "script":
        return Response(status=204)
    _, after = _neighbours(course, mod, les)
    target = step_url(after) if after and request.form.get("go") == "next" else url_for(
        "course.lesson", module_id=mod.id, lesson_id=les.id
    )
    return redirect(target, code=303)  # type: ignore[return-value]


@bp.post("/module/<module_id>/quiz")
@launched
def quiz_start(module_id: str) -> Response | tuple[str, int]:
    course = get_course()
    mod = _module_or_404(course, module_id)
    inst = current_instructor()
    s = db.session()
    settings = course_settings()
    state = service.load(s, inst, course, settings)
    mp = state.module(mod.id)
    assert mp is not None
    try:
        attempt = quiz.start(
            s, instructor_id=inst.id, course=course, progress=mp, now=db.utcnow(),
            cooldown_seconds=settings.cooldown_seconds,
            pass_mark_percent=settings.pass_mark_percent, config_version=settings.version,
        )
    except quiz.Locked:
        return _quiz_error(409, _("The quiz is not open yet"),
                           _("Read every lesson of this module to the end first."), mod)
    except quiz.CoolingDown as wait:
        return _quiz_error(
            429, _("Please wait a moment"),
            ngettext("You can start a new attempt in %(num)s second.",
                     "You can start a new attempt in %(num)s seconds.", wait.seconds_left),
            mod,
        )
    return redirect(url_for("course.quiz_attempt", attempt_id=attempt.id), code=303)  # type: ignore[return-value]


def _quiz_error(status: int, title: str, message: str, mod: Module | None,
                attempt_id: int | None = None) -> tuple[str, int]:
    return render_template(
        "course/quiz_refused.html", title=title, message=message, module=mod,
        attempt_id=attempt_id, course=get_course(), t=lambda v: text(get_course(), v),
    ), status


def _answers() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key in request.form:
        if key.startswith("q-"):
            out[key[2:]] = [v for v in request.form.getlist(key) if v][:10]
    return out


def _own_attempt(attempt_id: int) -> tuple[Course, Instructor, Any, Any, Module]:
    """The learner's own attempt and its module; another learner's attempt is a 404."""
    course = get_course()
    inst = current_instructor()
    s = db.session()
    try:
        attempt = quiz.get(s, inst.id, attempt_id)
    except quiz.NotFound:
        abort(404)
    return course, inst, s, attempt, _module_or_404(course, attempt.module_id)


@bp.route("/quiz/<int:attempt_id>", methods=["GET", "POST"])
@launched
def quiz_attempt(attempt_id: int) -> Any:
    course, inst, s, attempt, mod = _own_attempt(attempt_id)
    if request.method == "GET" and attempt.submitted_at is not None:
        return redirect(url_for("course.quiz_result", attempt_id=attempt.id), code=303)
    drawn = quiz.questions(course, attempt)
    answers: dict[str, list[str]] = {}
    missing: list[quiz.DrawnQuestion] = []
    if request.method == "POST":
        if attempt.submitted_at is not None:
            return _already_submitted(attempt.id, mod)
        answers = _answers()
        missing = quiz.unanswered(drawn, answers)
        if not missing:
            try:
                service.submit_quiz(
                    s, inst, course, course_settings(), attempt_id=attempt.id,
                    token=request.form.get("attempt_token", ""), answers=answers,
                    secret=current_app.config["SECRET_KEY"], link_pk=session.get("rl"),
                    gradebook_on=_gradebook_on(),
                )
            except quiz.AlreadySubmitted:
                return _already_submitted(attempt.id, mod)
            except quiz.BadToken:
                return _quiz_error(400, _("This quiz form is not valid"),
                                   _("Nothing was changed. Reload the quiz and try again."), mod)
            return redirect(url_for("course.quiz_result", attempt_id=attempt.id), code=303)
    body = _render(
        "course/quiz.html", course, module=mod, attempt=attempt, drawn=drawn, answers=answers,
        missing=missing, token=quiz.form_token(current_app.config["SECRET_KEY"], attempt),
        module_number=_offered(course).index(mod) + 1, pass_mark=quiz.pass_mark(course, attempt),
    )
    return (body, 422) if missing else body


def _already_submitted(attempt_id: int, mod: Module) -> tuple[str, int]:
    return _quiz_error(
        409, _("This quiz was already submitted"),
        _("Each attempt can be submitted once. Nothing was changed; your result is below."),
        mod, attempt_id=attempt_id,
    )


@bp.get("/quiz/<int:attempt_id>/result")
@launched
def quiz_result(attempt_id: int) -> Any:
    course, inst, s, attempt, mod = _own_attempt(attempt_id)
    if attempt.submitted_at is None:
        return redirect(url_for("course.quiz_attempt", attempt_id=attempt.id), code=303)
    settings = course_settings()
    state = service.load(s, inst, course, settings)
    mp = state.module(mod.id)
    assert mp is not None
    _, after = _neighbours(course, mod, None)
    return _render(
        "course/quiz_result.html", course, module=mod, attempt=attempt, mp=mp, progress=state,
        drawn=quiz.questions(course, attempt), graded=attempt.answers or {},
        cooldown=_cooldown_left(mp, settings), after=after, module_number=mp.number,
        pass_mark=quiz.pass_mark(course, attempt),
    )


@bp.get("/assets/<path:path>")
def asset(path: str) -> Response:
    """Lesson images. Public: an <img> request carries no session token."""
    target = get_course().assets.get(path)
    if target is None:
        abort(404)
    resp = send_file(Path(target), max_age=3600)
    return resp
