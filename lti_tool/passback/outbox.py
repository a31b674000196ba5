"""The durable outbox: scores are written in the caller's transaction and sent after commit."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from flask_babel import force_locale, gettext
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..i18n import DEFAULT, negotiate
from ..identity.models import Instructor, ResourceLink
from .models import PENDING, SENT, OutboxScore

ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")

_TARGETS = "lti_tool.passback.targets"
_HOOKED = "lti_tool.passback.hooked"
_APP = "lti_tool.passback.app"

Target = tuple[int, int]  # (resource_link_pk, instructor_id)


def can_deliver(ags: dict[str, Any] | None) -> bool:
    """Whether the AGS claim gives the tool anywhere to post a score (AGS §3.1)."""
    if not isinstance(ags, dict):
        return False
    return isinstance(ags.get("lineitem"), str) or isinstance(ags.get("lineitems"), str)


def learner_language(inst: Instructor | None) -> str:
    if inst is None:
        return DEFAULT
    return inst.preferred_language or negotiate(inst.lms_locale) or DEFAULT


def default_comment(
    lang: str, score_given: float | None, score_maximum: float, activity_progress: str
) -> str:
    with force_locale(lang):
        if score_given is None:
            if activity_progress == "Completed":
                return gettext("Recertification course completed.")
            if activity_progress == "Started":
                return gettext("Recertification course started.")
            return gettext("Recertification course in progress.")
        earned, total = _number(score_given), _number(score_maximum)
        if activity_progress == "Completed":
            return gettext(
                "Recertification complete: %(earned)s of %(total)s SPIN® CECs earned.",
                earned=earned,
                total=total,
            )
        return gettext(
            "%(earned)s of %(total)s SPIN® CECs earned so far.", earned=earned, total=total
        )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _validate(
    score_given: float | None, score_maximum: float, activity: str, grading: str
) -> None:
    # AGS §3.4.4: exact spellings, scoreMaximum > 0, 0 <= scoreGiven.
    if activity not in ACTIVITY_PROGRESS:
        raise ValueError(f"activity_progress must be one of {ACTIVITY_PROGRESS}")
    if grading not in GRADING_PROGRESS:
        raise ValueError(f"grading_progress must be one of {GRADING_PROGRESS}")
    if not score_maximum > 0:
        raise ValueError("score_maximum must be > 0")
    if score_given is not None and not 0 <= score_given <= score_maximum:
        raise ValueError("score_given must be between 0 and score_maximum")


def _same_payload(row: OutboxScore, new: OutboxScore) -> bool:
    return (
        row.score_given == new.score_given
        and row.score_maximum == new.score_maximum
        and row.activity_progress == new.activity_progress
        and row.grading_progress == new.grading_progress
        and row.comment == new.comment
    )


def enqueue_score(
    s: Session,
    *,
    instructor_id: int,
    resource_link_pk: int,
    score_given: float | None,
    score_maximum: float,
    activity_progress: str,
    grading_progress: str,
    comment: str | None = None,
) -> None:
    _validate(score_given, score_maximum, activity_progress, grading_progress)
    link = s.get(ResourceLink, resource_link_pk)
    if link is None or not can_deliver(link.ags_endpoint):
        return
    if comment is None:
        lang = learner_language(s.get(Instructor, instructor_id))
        comment = default_comment(lang, score_given, score_maximum, activity_progress)
    row = OutboxScore(
        instructor_id=instructor_id,
        resource_link_pk=resource_link_pk,
        score_given=float(score_given) if score_given is not None else None,
        score_maximum=float(score_maximum),
        activity_progress=activity_progress,
        grading_progress=grading_progress,
        comment=comment[:1000],
        state=PENDING,
    )
    live = (
        select(OutboxScore)
        .where(
            OutboxScore.resource_link_pk == resource_link_pk,
            OutboxScore.instructor_id == instructor_id,
            OutboxScore.state.in_((PENDING, SENT)),
        )
        .order_by(OutboxScore.id.desc())
    )
    newest = s.scalars(live.limit(1)).first()
    if newest is not None and _same_payload(newest, row):
        return  # the gradebook already shows (or is about to show) exactly this
    if score_given is None:
        # A relaunch reports "Started" with no score; sending it would blank the CECs the
        # gradebook already shows.
        scored = s.scalars(live.where(OutboxScore.score_given.is_not(None)).limit(1)).first()
        if scored is not None:
            return
    add_row(s, row)


def add_row(s: Session, row: OutboxScore) -> None:
    """Add an outbox row and arrange for delivery to start once the caller commits."""
    s.add(row)
    mark_for_delivery(s, (row.resource_link_pk, row.instructor_id))


def mark_for_delivery(s: Session, target: Target) -> None:
    s.info.setdefault(_TARGETS, set()).add(target)
    if has_app_context():
        s.info[_APP] = current_app._get_current_object()  # type: ignore[attr-defined]
    if not s.info.get(_HOOKED):
        event.listen(s, "after_commit", _after_commit)
        event.listen(s, "after_rollback", _after_rollback)
        s.info[_HOOKED] = True


def _after_commit(s: Session) -> None:
    targets: set[Target] | None = s.info.pop(_TARGETS, None)
    app = s.info.get(_APP)
    if targets and app is not None:
        from .sender import submit

        submit(app, sorted(targets))


def _after_rollback(s: Session) -> None:
    s.info.pop(_TARGETS, None)
