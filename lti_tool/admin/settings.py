"""The course set-up of one LMS context: what it is, what a valid one is, and how it is saved."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import current_app
from flask_babel import format_decimal, lazy_gettext
from flask_babel import gettext as _
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ..content import Course, Module
from ..db import execute, table, utcnow
from ..identity.models import LmsContext
from .models import CourseConfig

MIN_PASS_PERCENT, MAX_PASS_PERCENT = 50, 100
MAX_COOLDOWN_MINUTES = 7 * 24 * 60

# Labels of the audited fields, for the audit log page.
FIELD_LABELS = {
    "module_order": lazy_gettext("Module order"),
    "offered": lazy_gettext("Modules offered"),
    "required": lazy_gettext("Modules required"),
    "pass_mark_percent": lazy_gettext("Pass mark in percent"),
    "cooldown_seconds": lazy_gettext("Wait between quiz attempts (seconds)"),
    "languages": lazy_gettext("Languages learners may choose"),
    "course_language": lazy_gettext("Course language"),
    "starts_on": lazy_gettext("Course start date"),
    "ends_on": lazy_gettext("Course end date"),
    "allow_assistants": lazy_gettext("Teaching assistants may administer the course"),
}


@dataclass(frozen=True)
class CourseSettings:
    """The effective set-up of the course in one LMS context.

    `version` is 0 while the course admin has saved nothing (the defaults apply).
    """

    module_order: tuple[str, ...]
    offered: frozenset[str]
    required: frozenset[str]
    pass_mark_percent: int
    cooldown_seconds: int
    languages: tuple[str, ...]
    course_language: str
    starts_on: date | None = None
    ends_on: date | None = None
    allow_assistants: bool = False
    version: int = 0

    @property
    def pass_mark(self) -> float:
        return self.pass_mark_percent / 100

    def modules(self, course: Course) -> list[Module]:
        """The offered modules, in the configured order."""
        by_id = {m.id: m for m in course.modules}
        return [by_id[m] for m in self.module_order if m in self.offered and m in by_id]

    def is_open(self, day: date) -> bool:
        return (self.starts_on is None or day >= self.starts_on) and (
            self.ends_on is None or day <= self.ends_on
        )

    def offered_cecs(self, course: Course) -> float:
        return sum(float(m.cecs) for m in self.modules(course))

    def required_cecs(self, course: Course) -> float:
        return sum(float(m.cecs) for m in course.modules if m.id in self.required)

    def as_record(self) -> dict[str, Any]:
        """The audited fields, as JSON-friendly values (lists sorted where order is no meaning)."""
        return {
            "module_order": list(self.module_order),
            "offered": [m for m in self.module_order if m in self.offered],
            "required": [m for m in self.module_order if m in self.required],
            "pass_mark_percent": self.pass_mark_percent,
            "cooldown_seconds": self.cooldown_seconds,
            "languages": list(self.languages),
            "course_language": self.course_language,
            "starts_on": self.starts_on.isoformat() if self.starts_on else None,
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
            "allow_assistants": self.allow_assistants,
        }


def defaults(course: Course, course_language: str | None = None) -> CourseSettings:
    ids = tuple(m.id for m in course.modules)
    cfg = current_app.config
    lang = course_language if course_language in course.languages else course.languages[0]
    # Every module is required when all of them are needed for full completion (the real
    # course: 7 × 2 = 14 CECs); with more CECs on offer, learners choose.
    needed_all = sum(float(m.cecs) for m in course.modules) <= float(course.cecs)
    return CourseSettings(
        module_order=ids,
        offered=frozenset(ids),
        required=frozenset(ids) if needed_all else frozenset(),
        pass_mark_percent=round(course.pass_mark * 100),
        cooldown_seconds=int(cfg.get("QUIZ_COOLDOWN_SECONDS", 60)),
        languages=tuple(course.languages),
        course_language=lang,
        allow_assistants=bool(cfg.get("ALLOW_ASSISTANT_ADMINS", False)),
    )


# Every course page reads the settings: a Core row (same attribute names) and a statement
# built once, without the ORM's per-query work.
_SAVED = select(*table(CourseConfig).c).where(
    table(CourseConfig).c.context_pk == bindparam("context_pk")
)


def _row(s: Session, context_pk: int) -> CourseConfig | None:
    return s.scalars(select(CourseConfig).where(CourseConfig.context_pk == context_pk)).first()


def load(
    s: Session,
    context_pk: int | None,
    course: Course,
    course_language: str | None = None,
    known_version: int | None = None,
) -> CourseSettings:
    """The context's settings, reconciled with the course definition as it is now.

    Modules added to the definition after the save are offered (not required) at the end of
    the order; modules removed from it are dropped. With `known_version` (the context row's
    `settings_version`, read by the launch anyway) a worker that has that version in memory
    returns it without a query.
    """
    memo: dict[int, tuple[int, Course, CourseSettings]] = current_app.extensions.setdefault(
        "lti_tool.admin.settings", {}
    )
    if context_pk is not None and known_version is not None and course_language is None:
        hit = memo.get(context_pk)
        if hit is not None and hit[0] == known_version and hit[1] is course:
            return hit[2]
    settings = _load(s, context_pk, course, course_language)
    if context_pk is not None and course_language is None:
        if len(memo) >= 10_000:
            memo.clear()
        memo[context_pk] = (settings.version, course, settings)
    return settings


def _load(
    s: Session, context_pk: int | None, course: Course, course_language: str | None
) -> CourseSettings:
    base = defaults(course, course_language)
    row = (
        execute(s, _SAVED, {"context_pk": context_pk}).first() if context_pk is not None else None
    )
    if row is None:
        return base
    known = [m.id for m in course.modules]
    saved_order = [m for m in row.module_order if m in known]
    new = [m for m in known if m not in saved_order]
    order = tuple(dict.fromkeys(saved_order + new))
    languages = tuple(lang for lang in row.languages if lang in course.languages)
    return CourseSettings(
        module_order=order,
        offered=frozenset([m for m in row.offered if m in known] + new),
        required=frozenset([m for m in row.required if m in known]),
        pass_mark_percent=row.pass_mark_percent,
        cooldown_seconds=row.cooldown_seconds,
        languages=languages or base.languages,
        course_language=(
            row.course_language if row.course_language in course.languages else base.course_language
        ),
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        allow_assistants=row.allow_assistants,
        version=row.version,
    )


# ----------------------------------------------------------------------------- validation


@dataclass
class Parsed:
    settings: CourseSettings | None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.settings is not None and not self.errors


def _int(raw: str | None) -> int | None:
    try:
        return int((raw or "").strip())
    except ValueError:
        return None


def _date(raw: str | None) -> tuple[date | None, bool]:
    raw = (raw or "").strip()
    if not raw:
        return None, True
    try:
        return date.fromisoformat(raw), True
    except ValueError:
        return None, False


def cecs_text(value: float) -> str:
    return _("%(num)s SPIN® CECs", num=format_decimal(value))


def parse(form: Mapping[str, str], getlist: Any, course: Course, current: CourseSettings) -> Parsed:
    """Read the configuration form. Every problem is reported against its field's id."""
    errors: dict[str, str] = {}
    ids = [m.id for m in course.modules]
    positions: dict[str, int] = {}
    for index, mid in enumerate(ids):
        pos = _int(form.get(f"position-{mid}"))
        if pos is None or not 1 <= pos <= len(ids):
            errors[f"position-{mid}"] = _(
                "Enter a position from 1 to %(count)s.", count=len(ids)
            )
            pos = index + 1
        positions[mid] = pos
    order = tuple(sorted(ids, key=lambda m: (positions[m], ids.index(m))))
    offered = frozenset(m for m in ids if form.get(f"offered-{m}") == "on")
    required = frozenset(m for m in ids if form.get(f"required-{m}") == "on")
    by_id = {m.id: m for m in course.modules}
    for mid in required - offered:
        errors[f"required-{mid}"] = _("A required module must also be offered.")

    total = float(course.cecs)
    offered_cecs = sum(float(by_id[m].cecs) for m in offered)
    if offered_cecs < total:
        errors["offered"] = _(
            "The modules offered carry %(offered)s, so learners could not earn the %(total)s "
            "needed for full completion. Offer more modules.",
            offered=cecs_text(offered_cecs),
            total=cecs_text(total),
        )
    required_cecs = sum(float(by_id[m].cecs) for m in required)
    if required_cecs > total:
        errors["required"] = _(
            "The required modules carry %(required)s, more than the %(total)s of full "
            "completion. Require fewer modules.",
            required=cecs_text(required_cecs),
            total=cecs_text(total),
        )

    pass_mark = _int(form.get("pass_mark_percent"))
    if pass_mark is None or not MIN_PASS_PERCENT <= pass_mark <= MAX_PASS_PERCENT:
        errors["pass_mark_percent"] = _(
            "Enter a whole number from %(low)s to %(high)s.",
            low=MIN_PASS_PERCENT,
            high=MAX_PASS_PERCENT,
        )
    cooldown = _int(form.get("cooldown_minutes"))
    if cooldown is None or not 0 <= cooldown <= MAX_COOLDOWN_MINUTES:
        errors["cooldown_minutes"] = _(
            "Enter a whole number of minutes from 0 to %(high)s.", high=MAX_COOLDOWN_MINUTES
        )

    languages = tuple(lang for lang in course.languages if lang in set(getlist("languages")))
    if not languages:
        errors["languages"] = _("Choose at least one language.")
    course_language = form.get("course_language", "")
    if course_language not in course.languages:
        errors["course_language"] = _("Choose the course language.")

    starts_on, ok_start = _date(form.get("starts_on"))
    ends_on, ok_end = _date(form.get("ends_on"))
    if not ok_start:
        errors["starts_on"] = _("Enter a date as YYYY-MM-DD, or leave it empty.")
    if not ok_end:
        errors["ends_on"] = _("Enter a date as YYYY-MM-DD, or leave it empty.")
    if starts_on and ends_on and ends_on < starts_on:
        errors["ends_on"] = _("The end date must not be before the start date.")

    if errors:
        return Parsed(None, errors)
    assert pass_mark is not None and cooldown is not None
    return Parsed(
        CourseSettings(
            module_order=order,
            offered=offered,
            required=required,
            pass_mark_percent=pass_mark,
            cooldown_seconds=cooldown * 60,
            languages=languages,
            course_language=course_language,
            starts_on=starts_on,
            ends_on=ends_on,
            allow_assistants=form.get("allow_assistants") == "on",
            version=current.version,
        )
    )


def changes(old: CourseSettings, new: CourseSettings) -> dict[str, list[Any]]:
    """{field: [old, new]} for every field that differs."""
    before, after = old.as_record(), new.as_record()
    return {k: [before[k], after[k]] for k in after if before[k] != after[k]}


class Conflict(Exception):
    """Someone saved the configuration after this form was loaded."""


def save(
    s: Session,
    *,
    context_pk: int,
    course: Course,
    new: CourseSettings,
    expected_version: int,
    actor_id: int | None,
) -> int:
    """Store `new` if the stored version is still `expected_version`; returns the new version.

    Does not commit: the caller writes the audit entry in the same transaction.
    """
    row = _row(s, context_pk)
    values = {
        "course_id": course.id,
        "module_order": list(new.module_order),
        "offered": [m for m in new.module_order if m in new.offered],
        "required": [m for m in new.module_order if m in new.required],
        "pass_mark_percent": new.pass_mark_percent,
        "cooldown_seconds": new.cooldown_seconds,
        "languages": list(new.languages),
        "course_language": new.course_language,
        "starts_on": new.starts_on,
        "ends_on": new.ends_on,
        "allow_assistants": new.allow_assistants,
        "updated_at": utcnow(),
        "updated_by_id": actor_id,
    }
    if row is None:
        if expected_version != 0:
            raise Conflict()
        s.add(CourseConfig(context_pk=context_pk, version=1, **values))
        s.flush()  # a concurrent first save fails here on the named unique constraint
    else:
        # Compare-and-set, so that of two admins saving the same version only one wins.
        result = s.execute(
            update(CourseConfig)
            .where(CourseConfig.id == row.id, CourseConfig.version == expected_version)
            .values(version=expected_version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict()
    # Launches learn the new version with the context row (see `load`).
    s.execute(
        update(LmsContext)
        .where(LmsContext.id == context_pk)
        .values(settings_version=expected_version + 1)
        .execution_options(synchronize_session=False)
    )
    return expected_version + 1
