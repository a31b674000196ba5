"""The retry worker: sends every pending score that is due, in parallel across learners.

Several workers (and the senders in the web processes) may run at once: each learner's
deliveries are serialised by the lease on its `passback_target` row.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from sqlalchemy import and_, func, or_, select

from .. import db
from ..db import utcnow
from .delivery import deliver
from .jobs import Target
from .models import PENDING, OutboxScore, PassbackTarget

log = logging.getLogger(__name__)


def due_targets(app: Flask, limit: int) -> list[Target]:
    """Learners with a pending score that is due and nobody sending for them right now."""
    now = utcnow()
    with app.app_context(), db.standalone_session() as s:
        rows = s.execute(
            select(OutboxScore.resource_link_pk, OutboxScore.instructor_id)
            .outerjoin(
                PassbackTarget,
                and_(
                    PassbackTarget.resource_link_pk == OutboxScore.resource_link_pk,
                    PassbackTarget.instructor_id == OutboxScore.instructor_id,
                ),
            )
            .where(
                OutboxScore.state == PENDING,
                OutboxScore.next_attempt_at <= now,
                or_(PassbackTarget.lease_until.is_(None), PassbackTarget.lease_until < now),
            )
            .group_by(OutboxScore.resource_link_pk, OutboxScore.instructor_id)
            .order_by(func.min(OutboxScore.next_attempt_at))
            .limit(limit)
        ).all()
    return [(int(r[0]), int(r[1])) for r in rows]


class Worker:
    def __init__(self, app: Flask, batch: int, threads: int) -> None:
        self.app = app
        self.batch = batch
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="passback-worker")
        self.stop = threading.Event()
        self.attempts = 0

    def run_once(self) -> tuple[int, int]:
        """One pass over up to `batch` due learners: (learners found, attempts made)."""
        targets = due_targets(self.app, self.batch)
        if not targets:
            return 0, 0
        try:
            made = deliver(self.app, targets, self.pool, self.threads)
        except Exception:
            log.exception("passback: delivery of %d learners failed", len(targets))
            made = 0
        self.attempts += made
        return len(targets), made

    def drain(self) -> None:
        """Until nothing is due (what cron and `--once` want)."""
        while not self.stop.is_set():
            found, made = self.run_once()
            if found == 0 or made == 0:
                return

    def run_forever(self, poll_interval: float) -> None:
        while not self.stop.is_set():
            found, _made = self.run_once()
            if found < self.batch:
                self.stop.wait(poll_interval)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
