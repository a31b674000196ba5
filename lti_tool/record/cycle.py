"""Certification cycles and renewal status (domain brief §1.0): pure date logic, no I/O.

A certification expires 2 years after the exam date. Cycles are anchored on that date so that
leap days never drift: cycle n ends on exam + 2(n+1) years (29 February falls back to 28 February
in common years) and runs from the day after the previous cycle's end. The expiry day itself still
belongs to its cycle: a certification that "expires today" is valid until the end of the day, and
CECs earned that day count towards it. A cycle after the first is in force only if the instructor
renewed the one before (a renewal starts a new 2-year cycle).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

CYCLE_YEARS = 2


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Cycle:
    index: int
    starts_on: date
    expires_on: date

    @property
    def key(self) -> str:
        """Stable name of the cycle in the ledger: its expiry date."""
        return self.expires_on.isoformat()

    def __contains__(self, day: date) -> bool:
        return self.starts_on <= day <= self.expires_on


def expiry(exam_date: date, index: int) -> date:
    return add_years(exam_date, CYCLE_YEARS * (index + 1))


def cycle(exam_date: date, index: int) -> Cycle:
    start = exam_date if index == 0 else expiry(exam_date, index - 1) + timedelta(days=1)
    return Cycle(index, start, expiry(exam_date, index))


def cycle_on(exam_date: date, day: date) -> Cycle:
    """The cycle a day falls in (days before the exam belong to no cycle: index 0 is returned)."""
    if day <= exam_date:
        return cycle(exam_date, 0)
    index = max(0, (day.year - exam_date.year) // CYCLE_YEARS - 1)
    while expiry(exam_date, index) < day:
        index += 1
    while index > 0 and expiry(exam_date, index - 1) >= day:
        index -= 1
    return cycle(exam_date, index)


class State(enum.StrEnum):
    UNKNOWN = "unknown"  # no exam date yet
    CURRENT = "current"
    EXPIRING_SOON = "expiring_soon"
    ELIGIBLE = "eligible"  # enough CECs earned before expiry: may renew
    RENEWED = "renewed"  # the instructor told us they renewed this cycle
    EXPIRED = "expired"


@dataclass(frozen=True)
class Status:
    state: State
    cycle: Cycle | None
    days_left: int | None
    cecs_earned: float
    cecs_required: float
    expired_on: date | None = None

    @property
    def cecs_needed(self) -> float:
        return max(0.0, self.cecs_required - self.cecs_earned)

    @property
    def next_expiry(self) -> date | None:
        """After a renewal, the end of the next cycle."""
        if self.cycle is None or self.state is not State.RENEWED:
            return None
        return add_years(self.cycle.expires_on, CYCLE_YEARS)


def status(
    exam_date: date | None,
    today: date,
    cecs_by_day: list[tuple[date, float]],
    renewed_cycle_keys: set[str],
    cecs_required: float,
    expiring_soon_days: int = 90,
) -> Status:
    """Where the instructor stands today. `cecs_by_day` is the ledger (award day, CECs)."""
    if exam_date is None:
        earned = sum(c for _, c in cecs_by_day)
        return Status(State.UNKNOWN, None, None, earned, cecs_required)
    current = cycle_on(exam_date, today)
    earned = sum(c for d, c in cecs_by_day if d in current)
    if current.index > 0 and cycle(exam_date, current.index - 1).key not in renewed_cycle_keys:
        # The previous cycle ended without a renewal. CECs earned since still count in today's
        # 2-year window: the course is also how a lapsed instructor earns them back.
        first_lapsed = 0
        while cycle(exam_date, first_lapsed).key in renewed_cycle_keys:
            first_lapsed += 1
        lapsed = cycle(exam_date, first_lapsed)
        return Status(State.EXPIRED, current, None, earned, cecs_required,
                      expired_on=lapsed.expires_on)
    days_left = (current.expires_on - today).days
    if current.key in renewed_cycle_keys:
        state = State.RENEWED
    elif earned + 1e-9 >= cecs_required:
        state = State.ELIGIBLE
    elif days_left <= expiring_soon_days:
        state = State.EXPIRING_SOON
    else:
        state = State.CURRENT
    return Status(state, current, days_left, earned, cecs_required)
