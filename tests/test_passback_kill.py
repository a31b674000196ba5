"""The worker process is killed (SIGKILL) in the middle of a batch, with requests in flight.

After a restart it delivers the rest: every learner ends with their CECs, no timestamp is
repeated and none goes backwards (lms.duplicate_timestamps and lms.stale_scores stay empty).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from lti_tool import db
from lti_tool.passback import OutboxScore
from tests.passback_helpers import MAX, add_learners, assert_clean_history, award, launch, pending

ROOT = Path(__file__).resolve().parent.parent
LEARNERS = 24


def start_worker(env, tmp_path: Path, log_name: str) -> tuple[subprocess.Popen[bytes], Path]:  # type: ignore[no-untyped-def]
    cfg = env.app.config
    environ = {
        **os.environ,
        "DATABASE_URL": cfg["DATABASE_URL"],
        "SECRET_KEY": cfg["SECRET_KEY"],
        "LTI_HTTP_TIMEOUT": "3",
        "PASSBACK_LEASE_SECONDS": "4",
        "PASSBACK_RETRY_BASE": "0.1",
        "PASSBACK_POLL_INTERVAL": "0.1",
        "PASSBACK_WORKER_THREADS": "3",
        "AUTO_MIGRATE": "0",
    }
    if cfg.get("CACHE_REDIS_URL"):
        environ["REDIS_URL"] = cfg["CACHE_REDIS_URL"]
    else:
        environ.pop("REDIS_URL", None)
    log = tmp_path / log_name
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "lti_tool", "passback", "run", "--batch", "4"],
        cwd=ROOT,
        env=environ,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return proc, log


def in_flight(app) -> int:  # type: ignore[no-untyped-def]
    """Scores whose attempt was committed but whose outcome was not: sent when killed."""
    with app.app_context(), db.standalone_session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(OutboxScore)
                .where(OutboxScore.state == "pending", OutboxScore.attempts > 0)
            )
            or 0
        )


def test_sigkill_mid_batch_then_restart_delivers_the_rest_once(env, tmp_path):
    app, lms = env.app, env.lms
    app.config["PASSBACK_DELIVERY"] = "off"  # only the worker process sends
    _iid, rl = launch(env, lineitem=True)
    learners = add_learners(env, "k", LEARNERS)
    for iid in learners:
        award(env, iid, rl, 5, "InProgress", "FullyGraded")
    for iid in learners[: LEARNERS // 2]:
        award(env, iid, rl, MAX)  # supersedes the 5 for half of them
    # A slow LMS: every score takes 0.4 s and is applied even if the caller is gone.
    lms.faults.push("timeout", 10_000, seconds=0.4, apply=True)

    proc, log = start_worker(env, tmp_path, "worker1.log")
    try:
        deadline = time.monotonic() + 60
        killed_in_flight = 0
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            if len(lms.scores) >= 4:
                # Attempts committed, requests on the wire (the LMS takes 0.4 s for each).
                killed_in_flight = in_flight(app)
                if killed_in_flight:
                    break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_in_flight > 0, "the kill should land while scores are in flight"
    left = pending(app)
    assert left > 0
    time.sleep(0.6)  # let the LMS finish what it was processing for the dead worker

    proc, log = start_worker(env, tmp_path, "worker2.log")
    try:
        deadline = time.monotonic() + 90
        while pending(app) and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert pending(app) == 0, log.read_text()
        proc.send_signal(signal.SIGTERM)  # a clean stop, as systemd does
        assert proc.wait(15) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.6)

    li = next(iter(lms.lineitems.values()))
    for n in range(LEARNERS):
        expected = MAX if n < LEARNERS // 2 else 5
        result = lms.result(li, f"k-{n}")
        assert result is not None and result.score_given == expected, (n, result)
    assert lms.duplicate_timestamps == []
    assert lms.stale_scores == []
    assert_clean_history(lms)
    # At most the scores in flight at the kill reached the LMS twice (with new timestamps).
    per_user: dict[str, int] = {}
    for rec in lms.scores:
        per_user[rec.user_id] = per_user.get(rec.user_id, 0) + 1
    extra = sum(n - 1 for n in per_user.values())
    assert extra <= killed_in_flight
    assert "deliveries attempted" in log.read_text()
