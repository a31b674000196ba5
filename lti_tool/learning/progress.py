"""Where a learner stands in the course: per-module state, CECs, time left, where to continue."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    Numeric,
    Result,
    String,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from ..admin import CourseSettings
from ..content import Course, Lesson, Module
from ..db import as_utc, execute, table
from ..identity.models import ResourceLink
from ..record import ledger
from ..record.models import CecAward
from .models import LearnerLink, LessonProgress, QuizAttempt

# A quiz takes about a minute per question; used only for the "time left" estimate.
MINUTES_PER_QUESTION = 1


class ModuleState(enum.StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    PASSED = "passed"


@dataclass(frozen=True)
class Step:
    """A place in the course: a lesson, or a module's quiz (lesson is None)."""

    module: Module
    module_number: int
    lesson: Lesson | None
    lesson_number: int | None


@dataclass
class ModuleProgress:
    module: Module
    number: int
    lessons_done: set[str] = field(default_factory=set)
    lessons_opened: set[str] = field(default_factory=set)
    attempts: int = 0
    best_correct: int | None = None
    best_total: int | None = None
    passed: bool = False
    last_submitted_at: datetime | None = None
    open_attempt_id: int | None = None
    credited: bool = False  # CECs counted in the current cycle
    credited_earlier: bool = False  # credited in an earlier cycle only

    @property
    def lessons_complete(self) -> bool:
        return all(les.id in self.lessons_done for les in self.module.lessons)

    @property
    def quiz_unlocked(self) -> bool:
        return self.lessons_complete or self.passed

    @property
    def state(self) -> ModuleState:
        if self.passed and (self.credited or not self.credited_earlier):
            return ModuleState.PASSED
        if self.lessons_done or self.lessons_opened or self.attempts:
            return ModuleState.IN_PROGRESS
        return ModuleState.NOT_STARTED

    @property
    def best_fraction(self) -> float | None:
        if self.best_correct is None or not self.best_total:
            return None
        return self.best_correct / self.best_total

    @property
    def minutes_left(self) -> int:
        lessons = sum(les.minutes for les in self.module.lessons if les.id not in self.lessons_done)
        return lessons

    @property
    def has_progress(self) -> bool:
        return bool(self.lessons_done or self.attempts)


@dataclass
class CourseProgress:
    """Where a learner stands in the course as one LMS context offers it.

    `modules` are the offered modules in the configured order (what the learner sees);
    `module()` also finds the others, because a link may place a module that is no longer
    offered and its gradebook entry must still be scored out of that module.
    """

    course: Course
    modules: list[ModuleProgress]
    cecs_earned: float
    continue_at: Step | None
    started: bool
    required: frozenset[str]
    by_id: dict[str, ModuleProgress]
    # The learner's links and the grade each last got (for the gradebook), read with the rest.
    links: list[LinkState] = field(default_factory=list)

    @property
    def cecs_total(self) -> float:
        return self.course.cecs

    @property
    def complete(self) -> bool:
        """Every required module credited, and the CECs of full completion earned (the admin
        settings always let the offered modules reach them)."""
        return self.cecs_earned + 1e-9 >= float(self.course.cecs) and all(
            self.by_id[m].credited for m in self.required if m in self.by_id
        )

    @property
    def modules_credited(self) -> int:
        return sum(1 for m in self.modules if m.credited)

    @property
    def fraction(self) -> float:
        return min(1.0, self.cecs_earned / self.course.cecs) if self.course.cecs else 0.0

    @property
    def minutes_left(self) -> int:
        per_quiz = self.course.questions_per_attempt * MINUTES_PER_QUESTION
        return sum(m.minutes_left + per_quiz for m in self.modules if not m.credited)

    @property
    def has_progress(self) -> bool:
        return any(m.has_progress for m in self.by_id.values())

    def module(self, module_id: str) -> ModuleProgress | None:
        return self.by_id.get(module_id)


def steps(modules: Sequence[Module]) -> list[Step]:
    """Every lesson and quiz of `modules`, in their order."""
    out: list[Step] = []
    for mi, module in enumerate(modules, start=1):
        for li, lesson in enumerate(module.lessons, start=1):
            out.append(Step(module, mi, lesson, li))
        out.append(Step(module, mi, None, None))
    return out


LESSON, ATTEMPT, AWARD, LINK = 0, 1, 2, 3


class LinkState(NamedTuple):
    """A link the learner opened the course from, and the grade last sent there."""

    id: int
    resource_link_pk: int
    activity_progress: str | None
    grading_progress: str | None
    score_given: str | None
    module_id: str | None  # the module the link places, if it places one


def _activity_statement() -> Any:
    """Everything a course page needs of the learner, in one round trip: lesson rows, quiz
    attempts, CEC awards and the learner's links (with the grade last sent to each).

    The first column, `kind`, says which; the others mean, by kind (unused ones are NULL):
    LESSON: module_id, text = lesson id, at = last opened, done_at = completed;
    ATTEMPT: module_id, number = attempt id, at = submitted, n1 correct of n2, flag = passed;
    AWARD: module_id, cecs, day = awarded on;
    LINK: module_id = the module the link places, number = resource link pk, n1 = learner link
    id, text / grading / score = the activity progress, grading progress and score last sent.
    Built once: it runs on every course page.
    """
    les, att, award = table(LessonProgress).c, table(QuizAttempt).c, table(CecAward).c
    link, placed = table(LearnerLink).c, table(ResourceLink)
    learner: Any = bindparam("instructor_id")
    course: Any = bindparam("course_id")

    def row(kind: int, **cols: Any) -> list[Any]:
        typed: dict[str, Any] = {
            "module_id": String, "text": String, "number": Integer,
            "at": DateTime(timezone=True), "done_at": DateTime(timezone=True), "n1": Integer,
            "n2": Integer, "flag": Boolean, "cecs": Numeric(5, 2), "day": Date,
            "grading": String, "score": String,
        }
        # Inline, not a bound parameter: PostgreSQL cannot type a parameter in a UNION.
        return [literal_column(str(kind), Integer).label("kind")] + [
            (cols[name] if name in cols else cast(null(), kind_type)).label(name)
            for name, kind_type in typed.items()
        ]

    lessons = select(*row(
        LESSON, module_id=les.module_id, text=les.lesson_id, at=les.last_opened_at,
        done_at=les.completed_at,
    )).where(les.instructor_id == learner, les.course_id == course)
    attempts = select(*row(
        ATTEMPT, module_id=att.module_id, number=att.id, at=att.submitted_at, n1=att.correct,
        n2=att.total, flag=att.passed,
    )).where(att.instructor_id == learner, att.course_id == course)
    awards = select(*row(
        AWARD, module_id=award.module_id, cecs=award.cecs, day=award.awarded_on,
    )).where(award.instructor_id == learner, award.course_id == course)
    links = select(*row(
        LINK, module_id=placed.c.module_id, text=link.activity_progress,
        number=link.resource_link_pk, n1=link.id, grading=link.grading_progress,
        score=link.score_given,
    )).join_from(table(LearnerLink), placed, placed.c.id == link.resource_link_pk).where(
        link.instructor_id == learner
    )
    return union_all(lessons, attempts, awards, links)


_ACTIVITY = _activity_statement()


def _activity(s: Session, instructor_id: int, course_id: str) -> list[Any]:
    result: Result[Any] = execute(
        s, _ACTIVITY, {"instructor_id": instructor_id, "course_id": course_id}
    )
    return list(result)


def load(
    s: Session,
    instructor_id: int,
    course: Course,
    exam_date: date | None,
    today: date,
    settings: CourseSettings,
) -> CourseProgress:
    """The learner's progress (and links), from one query whatever the number of modules."""
    offered = settings.modules(course)
    position = {m.id: i for i, m in enumerate(offered, start=1)}
    # Modules not offered are numbered after the offered ones; they are never shown.
    extra = (m for m in course.modules if m.id not in position)
    for i, m in enumerate(extra, start=len(offered) + 1):
        position[m.id] = i
    mods = {m.id: ModuleProgress(m, position[m.id]) for m in course.modules}
    lesson_ids = {m.id: {les.id for les in m.lessons} for m in course.modules}
    last_lesson: tuple[datetime, str, str] | None = None
    attempted = False
    win = ledger.window(exam_date, today)
    earned = 0.0
    links: list[LinkState] = []
    for r in _activity(s, instructor_id, course.id):
        kind, module_id = r.kind, r.module_id
        if kind == LINK:
            links.append(LinkState(r.n1, r.number, r.text, r.grading, r.score, module_id))
            continue
        mp = mods.get(module_id)
        if kind == AWARD:
            if r.day in win:
                earned += float(r.cecs)
                if mp is not None:
                    mp.credited = True
            elif mp is not None:
                mp.credited_earlier = True
            continue
        if mp is None:
            continue  # removed from the course since
        if kind == LESSON:
            lesson_id = r.text
            if lesson_id not in lesson_ids[module_id]:
                continue
            mp.lessons_opened.add(lesson_id)
            if r.done_at is not None:
                mp.lessons_done.add(lesson_id)
            opened = as_utc(r.at)
            if last_lesson is None or opened > last_lesson[0]:
                last_lesson = (opened, module_id, lesson_id)
            continue
        attempted = True
        if r.at is None:
            mp.open_attempt_id = r.number
            continue
        correct, total = r.n1, r.n2
        if correct is None:
            continue  # abandoned when the course version changed
        mp.attempts += 1
        submitted = as_utc(r.at)
        if mp.last_submitted_at is None or submitted > mp.last_submitted_at:
            mp.last_submitted_at = submitted
        if mp.best_correct is None or correct / max(total, 1) > mp.best_correct / max(
            mp.best_total or 1, 1
        ):
            mp.best_correct, mp.best_total = correct, total
        mp.passed = mp.passed or bool(r.flag)
    shown = [mods[m.id] for m in offered]
    return CourseProgress(
        course=course,
        modules=shown,
        cecs_earned=earned,
        continue_at=_continue_at(offered, mods, last_lesson),
        started=last_lesson is not None or attempted,
        required=settings.required,
        by_id=mods,
        links=sorted(links),  # by id: one lock order for concurrent requests of one learner
    )


def _step_done(step: Step, mods: dict[str, ModuleProgress]) -> bool:
    mp = mods[step.module.id]
    if step.lesson is not None:
        return step.lesson.id in mp.lessons_done
    return mp.credited or (mp.passed and not mp.credited_earlier)


def _continue_at(
    modules: Sequence[Module],
    mods: dict[str, ModuleProgress],
    last: tuple[datetime, str, str] | None,
) -> Step | None:
    """Resume where the learner left off: the last lesson opened if unfinished, else the next
    unfinished step after it (wrapping round to anything skipped earlier)."""
    all_steps = steps(modules)
    start = 0
    if last is not None:
        _, module_id, lesson_id = last
        for i, st in enumerate(all_steps):
            if st.module.id == module_id and st.lesson is not None and st.lesson.id == lesson_id:
                start = i
                break
    for st in all_steps[start:] + all_steps[:start]:
        if not _step_done(st, mods):
            return st
    return None


def _insert_ignore(s: Session, model: type[LessonProgress], values: dict[str, object]) -> None:
    """Insert unless the row exists: two tabs opening a lesson at once must not fail."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    dialect = s.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    s.execute(ins(model).values(**values).on_conflict_do_nothing())


def open_lesson(
    s: Session, instructor_id: int, course: Course, lesson: Lesson, now: datetime
) -> LessonProgress:
    where = {
        "instructor_id": instructor_id,
        "course_id": course.id,
        "module_id": lesson.module_id,
        "lesson_id": lesson.id,
    }
    row = s.scalars(select(LessonProgress).filter_by(**where)).first()
    if row is None:
        _insert_ignore(s, LessonProgress, {**where, "first_opened_at": now, "last_opened_at": now})
        row = s.scalars(select(LessonProgress).filter_by(**where)).one()
    else:
        row.last_opened_at = now
    return row


def complete_lesson(
    s: Session, instructor_id: int, course: Course, lesson: Lesson, now: datetime
) -> bool:
    """Mark a lesson read to the end. True if this changed anything."""
    row = open_lesson(s, instructor_id, course, lesson, now)
    if row.completed_at is not None:
        return False
    row.completed_at = now
    row.completed_version = course.version
    return True
