"""Grade passback through LMS faults: 5xx, timeouts (some processed by the LMS anyway), 429
with Retry-After, 401 on an expired token, a 400 "user not gradable", token endpoint errors.

After the faults stop, every learner's gradebook entry equals their CECs, timestamps only
increase and none is repeated (the LMS would silently ignore such a score, AGS §3.4).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from lti_tool import db
from lti_tool.db import as_utc
from lti_tool.passback import OutboxScore
from lti_tool.passback.delivery import MIN_ATTEMPTS_BEFORE_GIVING_UP
from lti_tool.passback.jobs import retry_delay
from lti_tool.passback.worker import Worker
from tests.lms.web import iso_instant
from tests.passback_helpers import (
    MAX,
    add_learners,
    assert_clean_history,
    award,
    fast,
    launch,
    pending,
    rows,
    settle,
)


def test_every_fault_kind_and_still_every_learner_ends_with_their_cecs(env):
    fast(env.app, timeout=0.5)
    env.app.config["PASSBACK_RETRY_BASE"] = 0.4  # a retry waits for a timed-out request to land
    lms = env.lms
    # No coupled column: the tool creates it (for the launch's "Started"), through faults too.
    lms.faults.push("500", 1, scope="token")
    lms.faults.push("500", 1, scope="lineitems")
    iid0, rl = launch(env)
    learners = [iid0, *add_learners(env, "f", 9)]
    lms.faults.push("500", 3)
    lms.faults.push("503", 2, retry_after=0)
    # The tool gives up after 0.5 s; the LMS applies two of them anyway.
    lms.faults.push("timeout", 2, seconds=0.8, apply=True)
    lms.faults.push("timeout", 2, seconds=0.8)
    lms.faults.push("429", 2, retry_after=1)
    lms.faults.push("401", 1)
    final = {}
    for step, cecs in enumerate((2, 7, MAX)):
        for n, iid in enumerate(learners):
            value = max(0, cecs - (n % 3)) if cecs != MAX else MAX - (n % 2) * 4
            award(env, iid, rl, value, "InProgress", "FullyGraded")
            final[iid] = value
        if step == 0:
            time.sleep(0.3)  # some deliveries are in flight while the next awards arrive
    lms.faults.push("timeout", 1, seconds=0.8, apply=True)
    lms.faults.push("500", 1)
    settle(env.app, timeout=90)
    time.sleep(1.0)  # requests the tool gave up on are still being processed by the LMS
    assert lms.faults.pending == 0
    kinds = {e.kind for e in lms.faults.log}
    assert kinds == {"500", "503", "timeout", "429", "401"}

    li = next(iter(lms.lineitems.values()))
    assert len(lms.lineitems) == 1
    users = {iid: f"f-{n - 1}" if n else "learner-1" for n, iid in enumerate(learners)}
    for iid, value in final.items():
        result = lms.result(li, users[iid])
        assert result is not None and result.score_given == value, (users[iid], value)
    assert_clean_history(lms, late_ok=3)
    assert lms.rejected_scores == []
    assert all(r.state in ("sent", "superseded") for r in rows(env.app))
    # One token, one more after the 401 (the failed token request is not a token).
    assert lms.token_requests <= 3
    assert len(lms.tokens) == 2


def test_a_timeout_the_lms_processed_is_resent_with_a_later_timestamp(env):
    fast(env.app, timeout=0.3)
    env.app.config["PASSBACK_RETRY_BASE"] = 1.0  # as in production, the retry comes later
    iid, rl = launch(env, lineitem=True)
    env.lms.faults.push("timeout", 1, seconds=0.6, apply=True)
    award(env, iid, rl, 5, "InProgress", "FullyGraded")
    settle(env.app)
    # Both calls reach the LMS, in either order on a loaded machine: the late one may land
    # after the retry, and then the timestamp rule rightly keeps the retry's score.
    deadline = time.monotonic() + 5
    while len(fives := _fives(env.lms)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fives) == 2 and fives[0] < fives[1]
    li = next(iter(env.lms.lineitems.values()))
    result = env.lms.result(li, "learner-1")
    assert result is not None and result.timestamp == fives[1]
    assert_clean_history(env.lms, late_ok=1)
    row = rows(env.app)[-1]
    assert (row.state, row.attempts) == ("sent", 2)


def _fives(lms: Any) -> list[str]:
    """The timestamps of the score-5 calls the LMS processed, applied or stale, oldest first."""
    calls = [*lms.scores, *lms.stale_scores]
    stamps = [r.body["timestamp"] for r in calls if r.body.get("scoreGiven") == 5]
    return sorted(stamps, key=iso_instant)


def test_429_retry_after_is_honoured(env):
    fast(env.app)
    env.app.config["PASSBACK_DELIVERY"] = "off"
    iid, rl = launch(env, lineitem=True)
    award(env, iid, rl, 3)
    env.lms.faults.push("429", 1, retry_after=2)
    worker = Worker(env.app, batch=10, threads=1)
    try:
        worker.drain()
        row = rows(env.app)[-1]
        assert row.state == "pending" and "429" in (row.last_error or "")
        wait = (row.next_attempt_at - row.last_attempt_at).total_seconds()
        assert 2.0 <= wait <= 3.0  # Retry-After + jitter (+ the request itself)
        worker.drain()  # not due yet: nothing is sent
        assert env.lms.score_requests == 1, "the launch's Started is superseded, never sent"
        time.sleep(3.1)
        worker.drain()
    finally:
        worker.close()
    assert rows(env.app)[-1].state == "sent"
    assert env.lms.score_requests == 2


def test_an_old_score_still_failing_is_given_up_only_after_its_retries(env):
    fast(env.app)
    env.app.config["PASSBACK_DELIVERY"] = "off"
    iid, rl = launch(env, lineitem=True)
    award(env, iid, rl, 7)
    # Made 15 days ago: the worker was stopped, or its platform deactivated, since then.
    with env.app.app_context(), db.standalone_session() as s:
        s.execute(update(OutboxScore).values(created_at=db.utcnow() - timedelta(days=15)))
        s.commit()
    env.lms.faults.push("500", 10)
    worker = Worker(env.app, batch=10, threads=1)
    try:
        for attempt in range(1, MIN_ATTEMPTS_BEFORE_GIVING_UP + 1):
            row = rows(env.app)[-1]
            time.sleep(max(0.0, (as_utc(row.next_attempt_at) - db.utcnow()).total_seconds()))
            worker.drain()
            row = rows(env.app)[-1]
            assert row.attempts == attempt
            if attempt < MIN_ATTEMPTS_BEFORE_GIVING_UP:
                assert row.state == "pending", attempt
    finally:
        worker.close()
    assert row.state == "failed"
    assert (row.last_error or "").startswith(f"gave up after {MIN_ATTEMPTS_BEFORE_GIVING_UP}")
    assert env.lms.score_requests == MIN_ATTEMPTS_BEFORE_GIVING_UP


def test_backoff_grows_exponentially_with_jitter_and_is_capped(app):
    app.config.update(PASSBACK_RETRY_BASE=10.0, PASSBACK_RETRY_MAX=300.0)
    for attempt, top in ((1, 10), (2, 20), (3, 40), (4, 80), (6, 300), (40, 300)):
        delays = {retry_delay(app, attempt, None) for _ in range(50)}
        assert all(top / 2 <= d <= top for d in delays)
        assert len(delays) > 1  # jittered
    assert 7 <= retry_delay(app, 1, 7) <= 8  # Retry-After wins over the back-off


def test_not_gradable_fails_for_good_with_the_platforms_message_then_recovers(env):
    fast(env.app)
    iid, rl = launch(env, lineitem=True)
    env.lms.faults.push("400_not_gradable", 1)
    award(env, iid, rl, 3)
    settle(env.app)
    failed = rows(env.app)[-1]
    assert failed.state == "failed" and failed.attempts == 1 and failed.http_status == 400
    assert "Incorrect score received: user is not gradable" in (failed.last_error or "")
    award(env, iid, rl, 4)
    settle(env.app)
    li = next(iter(env.lms.lineitems.values()))
    assert env.lms.result(li, "learner-1").score_given == 4
    assert_clean_history(env.lms)


def test_lms_down_for_a_long_time_loses_nothing(env):
    """Outage: every request fails until the LMS is back; the outbox holds the newest score."""
    fast(env.app, timeout=0.5)
    iid, rl = launch(env, lineitem=True)
    sent = [r.state for r in rows(env.app)].count("sent")
    env.lms.faults.push("503", 10_000, scope="any")
    for cecs in (1, 5, 9):
        award(env, iid, rl, cecs)
        Worker(env.app, batch=10, threads=1).drain()
    assert pending(env.app) >= 1
    env.lms.faults.clear()
    settle(env.app)
    li = next(iter(env.lms.lineitems.values()))
    assert env.lms.result(li, "learner-1").score_given == 9
    # The newest is sent; an older one only if it was already in flight when the LMS came back.
    assert rows(env.app)[-1].state == "sent"
    assert [r.state for r in rows(env.app)].count("sent") - sent in (1, 2)
    assert_clean_history(env.lms)
