"""Shared helpers for the grade passback tests (tests/test_passback*.py)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from lti_tool import db
from lti_tool.identity.models import Instructor, ResourceLink
from lti_tool.passback import OutboxScore, enqueue_score
from lti_tool.passback.sender import wait_idle
from lti_tool.passback.worker import Worker
from tests.conftest import landed_url

MAX = 14


def fast(app: Any, timeout: float = 2.0) -> None:
    """Back-off in milliseconds instead of minutes, short HTTP timeouts."""
    app.config.update(
        LTI_HTTP_TIMEOUT=timeout,
        PASSBACK_RETRY_BASE=0.05,
        PASSBACK_RETRY_MAX=0.5,
        PASSBACK_LEASE_SECONDS=4 * timeout,
    )


def launch(env: Any, user: str = "learner-1", **kw: Any) -> tuple[int, int]:
    """A real launch; returns (instructor pk, resource link pk)."""
    resp = env.launch(user, **kw)
    # Passback needs only what the launch recorded; the course page is another package's.
    assert "/course/" in landed_url(resp), (resp.status_code, resp.text[:500])
    rlid = kw.get("resource_link_id", "rl-1")
    with env.app.app_context(), db.standalone_session() as s:
        iid = s.scalars(select(Instructor.id).where(Instructor.sub == user)).one()
        rl = s.scalars(select(ResourceLink.id).where(ResourceLink.resource_link_id == rlid)).one()
    if env.app.config["PASSBACK_DELIVERY"] != "off":
        # The course page reports "Started" (learning package); let that land first.
        settle(env.app)
    return iid, rl


def add_learners(env: Any, prefix: str, n: int) -> list[int]:
    """Learners enrolled at the LMS whose launch the tool has recorded (rows written directly:
    a real launch each would only slow the test; the link and its AGS claim come from a real
    launch made before)."""
    from tests.lms import claims as C

    ids = []
    with env.app.app_context(), db.standalone_session() as s:
        for i in range(n):
            user = f"{prefix}-{i}"
            env.lms.add_user(user, name=f"Learner {i}")
            env.lms.enrol(env.context_id, user, roles=[C.ROLE_LEARNER])
            inst = Instructor(issuer=env.lms.issuer, sub=user, name=f"Learner {i}")
            s.add(inst)
            s.flush()
            ids.append(inst.id)
        s.commit()
    return ids


def award(
    env: Any,
    iid: int,
    rl: int,
    cecs: float | None,
    activity: str | None = None,
    grading: str | None = None,
    comment: str | None = None,
) -> None:
    """What the learning package does: the score row in the same transaction, then commit."""
    final = cecs == MAX
    with env.app.app_context(), db.standalone_session() as s:
        enqueue_score(
            s,
            instructor_id=iid,
            resource_link_pk=rl,
            score_given=cecs,
            score_maximum=MAX,
            activity_progress=activity or ("Completed" if final else "InProgress"),
            grading_progress=grading or ("FullyGraded" if final else "Pending"),
            comment=comment,
        )
        s.commit()


def pending(app: Any) -> int:
    with app.app_context(), db.standalone_session() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(OutboxScore).where(OutboxScore.state == "pending")
            )
            or 0
        )


def settle(app: Any, timeout: float = 30.0) -> None:
    """Let the sender finish and the worker retry until nothing is pending."""
    deadline = time.monotonic() + timeout
    worker = Worker(app, batch=100, threads=4)
    try:
        while time.monotonic() < deadline:
            assert wait_idle(app, max(deadline - time.monotonic(), 0.1))
            worker.drain()
            if pending(app) == 0 and wait_idle(app, 0.1):
                return
            time.sleep(0.05)
    finally:
        worker.close()
    raise AssertionError(f"{pending(app)} scores still pending after {timeout}s")


def rows(app: Any) -> list[OutboxScore]:
    with app.app_context(), db.standalone_session() as s:
        return list(s.scalars(select(OutboxScore).order_by(OutboxScore.id)))


def assert_clean_history(lms: Any, late_ok: int = 0) -> None:
    """AGS §3.4: no timestamp repeated, and timestamps increase per (line item, user).

    `late_ok`: requests the tool timed out on that the LMS still processed afterwards (fault
    "timeout" with apply=True). If the tool has meanwhile sent a newer score, the late one
    arrives with an older timestamp and the LMS rightly ignores it ("stale"); that is the
    timestamp rule protecting the newer score, so up to `late_ok` of those are allowed.
    """
    from tests.lms.web import iso_instant

    assert lms.duplicate_timestamps == []
    assert len(lms.stale_scores) <= late_ok, lms.stale_scores
    for stale in lms.stale_scores:
        current = lms.results[(stale.lineitem_id, stale.user_id)]
        assert iso_instant(stale.timestamp) < iso_instant(current.timestamp)
    last: dict[tuple[int, str], Any] = {}
    for rec in lms.scores:
        key = (rec.lineitem_id, rec.user_id)
        instant = iso_instant(rec.timestamp)
        assert instant is not None
        assert key not in last or instant > last[key]
        last[key] = instant
