"""The learner progress report: the LMS roster (NRPS) joined with the tool's own records.

Learners on the roster who never opened the course are listed as not started; people who
opened it but are no longer on the roster are listed too, marked as such. The HTML page and the
CSV export are built from the same rows, filters and sort order.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from flask_babel import format_decimal, lazy_gettext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import cache
from ..content import Course
from ..db import as_utc, utcnow
from ..identity.models import Instructor, LmsContext, Membership, ResourceLink
from ..learning import LessonProgress, QuizAttempt
from ..lti.models import Deployment, Registration
from ..lti.roles import LEARNER, classify
from ..passback import status as passback_status
from ..record import CecAward, ledger
from . import nrps
from .settings import CourseSettings

ROSTER_KEY = "admin:roster:"
ROSTER_TTL = 300  # seconds; "Refresh roster" asks the LMS again at once

NOT_STARTED, IN_PROGRESS, COMPLETE = "not_started", "in_progress", "complete"
STATE_LABELS = {
    NOT_STARTED: lazy_gettext("Not started"),
    IN_PROGRESS: lazy_gettext("In progress"),
    COMPLETE: lazy_gettext("Complete"),
}
NO_GRADE, GRADE_PENDING, GRADE_SENT, GRADE_FAILED = "none", "pending", "sent", "failed"
PASSBACK_LABELS = {
    NO_GRADE: lazy_gettext("Nothing to send yet"),
    GRADE_PENDING: lazy_gettext("Waiting to be sent"),
    GRADE_SENT: lazy_gettext("Sent to the LMS"),
    GRADE_FAILED: lazy_gettext("Failed"),
}
LMS_STATUS_LABELS = {
    "Active": lazy_gettext("Active"),
    "Inactive": lazy_gettext("Inactive"),
    "Deleted": lazy_gettext("Removed"),
}
SORTS = ("name", "state", "modules", "cecs", "activity", "passback")
_STATE_RANK = {NOT_STARTED: 0, IN_PROGRESS: 1, COMPLETE: 2}
_GRADE_RANK = {NO_GRADE: 0, GRADE_SENT: 1, GRADE_PENDING: 2, GRADE_FAILED: 3}


@dataclass
class Row:
    user_id: str
    name: str
    email: str | None
    instructor_id: int | None
    is_learner: bool
    in_roster: bool
    lms_status: str | None = None
    modules_passed: int = 0
    cecs: float = 0.0
    last_activity: datetime | None = None
    state: str = NOT_STARTED
    passback: str = NO_GRADE
    passback_error: str | None = None


@dataclass(frozen=True)
class Filters:
    q: str = ""
    state: str = ""
    passback: str = ""
    everyone: bool = False  # False: learners only
    link: str = ""  # a resource_link_id of the context: NRPS rlid and that link's grades
    sort: str = "name"
    descending: bool = False

    @classmethod
    def from_args(cls, args: Any) -> Filters:
        sort = args.get("sort", "name")
        return cls(
            q=(args.get("q") or "").strip()[:200],
            state=args.get("state", "") if args.get("state") in STATE_LABELS else "",
            passback=args.get("passback", "") if args.get("passback") in PASSBACK_LABELS else "",
            everyone=args.get("who") == "all",
            link=(args.get("link") or "")[:255],
            sort=sort if sort in SORTS else "name",
            descending=args.get("dir") == "desc",
        )

    def as_args(self, **override: Any) -> dict[str, str]:
        f = replace(self, **override)
        out = {
            "q": f.q,
            "state": f.state,
            "passback": f.passback,
            "who": "all" if f.everyone else "",
            "link": f.link,
            "sort": f.sort if f.sort != "name" else "",
            "dir": "desc" if f.descending else "",
        }
        return {k: v for k, v in out.items() if v}


@dataclass
class Report:
    rows: list[Row]
    total: int
    modules_offered: int
    roster_error: nrps.NrpsError | None = None
    roster_pages: int = 0
    roster_used: bool = False
    links: list[ResourceLink] = field(default_factory=list)


# ----------------------------------------------------------------------------- roster


def _registration(s: Session, ctx: LmsContext) -> Registration | None:
    dep = s.get(Deployment, ctx.deployment_id)
    return s.get(Registration, dep.registration_id) if dep is not None else None


def context_links(s: Session, context_pk: int) -> list[ResourceLink]:
    return list(
        s.scalars(
            select(ResourceLink)
            .where(ResourceLink.context_pk == context_pk)
            .order_by(ResourceLink.id)
        )
    )


def roster(
    s: Session, ctx: LmsContext, links: list[ResourceLink], rlid: str | None, refresh: bool
) -> nrps.Roster:
    with_url = [link for link in links if link.nrps_url]
    if not with_url:
        raise nrps.NrpsError(
            _("The LMS did not offer the course roster (Names and Role Provisioning Services) "
              "to this tool."),
            "no NRPS claim in any launch of this context",
        )
    url = str(with_url[-1].nrps_url)  # the newest launch's claim
    reg = _registration(s, ctx)
    if reg is None:
        raise nrps.NrpsError(_("The LMS registration of this course no longer exists."))
    key = f"{ROSTER_KEY}{ctx.id}:{rlid or ''}"
    if not refresh:
        cached = cache.get(key)
        if isinstance(cached, nrps.Roster):
            return cached
    found = nrps.fetch_roster(s, reg, url, rlid)
    cache.set(key, found, ROSTER_TTL)
    return found


# ----------------------------------------------------------------------------- records


def _latest(values: Iterable[datetime | None]) -> datetime | None:
    present = [as_utc(v) for v in values if v is not None]
    return max(present) if present else None


def build(
    s: Session,
    *,
    ctx: LmsContext,
    course: Course,
    settings: CourseSettings,
    filters: Filters,
    refresh: bool = False,
    today: date | None = None,
) -> Report:
    today = today or utcnow().date()
    links = context_links(s, ctx.id)
    link_ids = {link.resource_link_id for link in links}
    rlid = filters.link if filters.link in link_ids else None
    reg = _registration(s, ctx)
    issuer = reg.issuer if reg is not None else ""

    rows: dict[str, Row] = {}
    error: nrps.NrpsError | None = None
    pages = 0
    try:
        found = roster(s, ctx, links, rlid, refresh)
        pages = found.pages
        for m in found.members:
            rows[m.user_id] = Row(
                user_id=m.user_id,
                name=m.display_name,
                email=m.email,
                instructor_id=None,
                is_learner=classify(m.roles) == LEARNER,
                in_roster=True,
                lms_status=m.status,
            )
    except nrps.NrpsError as exc:
        error = exc

    # Everyone who opened the course from this context, on the roster or not.
    launched = s.execute(
        select(Instructor, Membership)
        .join(Membership, Membership.instructor_id == Instructor.id)
        .where(Membership.context_pk == ctx.id)
    ).all()
    people: dict[int, Instructor] = {}
    last_launch: dict[int, datetime] = {}
    for inst, mem in launched:
        people[inst.id] = inst
        last_launch[inst.id] = as_utc(mem.last_launch_at)
        row = rows.get(inst.sub)
        if row is None:
            if rlid is not None:
                continue  # a link's roster: only the people the LMS lists for it
            rows[inst.sub] = Row(
                user_id=inst.sub,
                name=inst.display_name or inst.sub,
                email=inst.email,
                instructor_id=inst.id,
                is_learner=classify(mem.roles) == LEARNER,
                in_roster=error is not None,  # unknown when the roster could not be read
            )
        else:
            row.instructor_id = inst.id
    # Roster members known from launches in other contexts of the same platform.
    unmatched = [r.user_id for r in rows.values() if r.instructor_id is None]
    for chunk_start in range(0, len(unmatched), 500):
        chunk = unmatched[chunk_start : chunk_start + 500]
        for inst in s.scalars(
            select(Instructor).where(Instructor.issuer == issuer, Instructor.sub.in_(chunk))
        ):
            people[inst.id] = inst
            rows[inst.sub].instructor_id = inst.id

    _add_learning(s, rows, people, last_launch, course, settings, today)
    _add_passback(s, rows, ctx, links, rlid)

    selected = [r for r in rows.values() if _keep(r, filters)]
    _sort(selected, filters)
    return Report(
        rows=selected,
        total=len(rows),
        modules_offered=len(settings.modules(course)),
        roster_error=error,
        roster_pages=pages,
        roster_used=error is None,
        links=links,
    )


def _add_learning(
    s: Session,
    rows: dict[str, Row],
    people: dict[int, Instructor],
    last_launch: dict[int, datetime],
    course: Course,
    settings: CourseSettings,
    today: date,
) -> None:
    by_id = {r.instructor_id: r for r in rows.values() if r.instructor_id is not None}
    ids = list(by_id)
    if not ids:
        return
    lessons: dict[int, datetime] = {}
    attempts: dict[int, datetime] = {}
    active: set[int] = set()
    awards: dict[int, list[CecAward]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for iid, opened in s.execute(
            select(LessonProgress.instructor_id, func.max(LessonProgress.last_opened_at))
            .where(LessonProgress.instructor_id.in_(chunk), LessonProgress.course_id == course.id)
            .group_by(LessonProgress.instructor_id)
        ):
            lessons[iid] = opened
            active.add(iid)
        for iid, submitted, started in s.execute(
            select(
                QuizAttempt.instructor_id,
                func.max(QuizAttempt.submitted_at),
                func.max(QuizAttempt.started_at),
            )
            .where(QuizAttempt.instructor_id.in_(chunk), QuizAttempt.course_id == course.id)
            .group_by(QuizAttempt.instructor_id)
        ):
            attempts[iid] = submitted or started
            active.add(iid)
        for award in s.scalars(
            select(CecAward).where(
                CecAward.instructor_id.in_(chunk), CecAward.course_id == course.id
            )
        ):
            awards.setdefault(award.instructor_id, []).append(award)
    offered = {m.id for m in settings.modules(course)}
    for iid, row in by_id.items():
        inst = people.get(iid)
        win = ledger.window(inst.certification_date if inst else None, today)
        counted = [a for a in awards.get(iid, []) if a.awarded_on in win]
        credited = {a.module_id for a in counted}
        row.modules_passed = len(credited & offered)
        row.cecs = float(sum(float(a.cecs) for a in counted))
        row.last_activity = _latest((lessons.get(iid), attempts.get(iid), last_launch.get(iid)))
        if row.cecs >= float(course.cecs) and set(settings.required) <= credited:
            row.state = COMPLETE
        elif iid in active or awards.get(iid):
            row.state = IN_PROGRESS


def _add_passback(
    s: Session, rows: dict[str, Row], ctx: LmsContext, links: list[ResourceLink], rlid: str | None
) -> None:
    only = {link.id for link in links if link.resource_link_id == rlid} if rlid else None
    by_iid = {r.instructor_id: r for r in rows.values() if r.instructor_id is not None}
    for st in passback_status(s, ctx.id):
        row = by_iid.get(st.instructor_id)
        if row is None or (only is not None and st.resource_link_pk not in only):
            continue
        state = {"pending": GRADE_PENDING, "sent": GRADE_SENT, "failed": GRADE_FAILED}.get(
            st.state, GRADE_PENDING
        )
        error = (
            _("Held: this LMS is deactivated in the tool. The score is sent once an operator "
              "activates it again.")
            if st.held
            else st.error
        )
        if _GRADE_RANK[state] > _GRADE_RANK[row.passback]:
            row.passback = state
            row.passback_error = error
        elif state == GRADE_FAILED and not row.passback_error:
            row.passback_error = error


def _keep(row: Row, f: Filters) -> bool:
    if not f.everyone and not row.is_learner:
        return False
    if f.state and row.state != f.state:
        return False
    if f.passback and row.passback != f.passback:
        return False
    if f.q:
        needle = f.q.casefold()
        hay = " ".join(x for x in (row.name, row.email or "", row.user_id) if x).casefold()
        if needle not in hay:
            return False
    return True


def _sort(rows: list[Row], f: Filters) -> None:
    rows.sort(key=lambda r: (r.name.casefold(), r.user_id))
    epoch = datetime(1970, 1, 1).astimezone()
    keys = {
        "state": lambda r: _STATE_RANK[r.state],
        "modules": lambda r: r.modules_passed,
        "cecs": lambda r: r.cecs,
        "activity": lambda r: r.last_activity or epoch,
        "passback": lambda r: _GRADE_RANK[r.passback],
    }
    if f.sort in keys:
        rows.sort(key=keys[f.sort], reverse=f.descending)  # stable: ties stay by name
    elif f.descending:
        rows.reverse()


# ----------------------------------------------------------------------------- CSV


# Excel opens a double-clicked CSV with the list separator of the system's locale: a comma for
# English, a semicolon where the decimal separator is a comma (German, Spanish).
DELIMITERS = {"en": ",", "de": ";", "es": ";"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    # Names come from the LMS: a leading "=" would run as a formula in Excel (CSV injection).
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_bytes(report: Report, lang: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITERS.get(lang, ","), lineterminator="\r\n")
    writer.writerow(
        [
            _("Name"),
            _("E-mail"),
            _("LMS user ID"),
            _("LMS status"),
            _("Status"),
            _("Modules passed"),
            _("Modules offered"),
            _("SPIN® CECs"),
            _("Last activity (UTC)"),
            _("Grade passback"),
            _("Grade passback error"),
        ]
    )
    for r in report.rows:
        lms_status = (
            str(LMS_STATUS_LABELS.get(r.lms_status or "", r.lms_status or ""))
            if r.in_roster
            else _("Not on the LMS roster")
        )
        writer.writerow(
            [
                _cell(r.name),
                _cell(r.email or ""),
                _cell(r.user_id),
                _cell(lms_status),
                str(STATE_LABELS[r.state]),
                str(r.modules_passed),
                str(report.modules_offered),
                format_decimal(r.cecs, format="0.##"),
                r.last_activity.strftime("%Y-%m-%d %H:%M") if r.last_activity else "",
                str(PASSBACK_LABELS[r.passback]),
                _cell(r.passback_error or ""),
            ]
        )
    # The byte order mark is what makes Excel read the file as UTF-8 (ä, ñ, ®).
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
