"""Delivery right after commit, by background threads of the committing process.

The web request that awarded the CECs returns at once. Dispatcher threads take what has been
committed since they last looked (one learner or a burst of hundreds) and deliver it as one
batch, the requests in parallel. If the process dies first, the rows are still pending in the
outbox and the worker sends them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from .delivery import deliver, deliver_target
from .jobs import Target

log = logging.getLogger(__name__)

BATCH = 100
DISPATCHERS = 2
IDLE_EXIT = 30.0  # seconds without work before the threads stop


class Sender:
    def __init__(self, app: Flask, threads: int, idle_exit: float = IDLE_EXIT) -> None:
        self._app = app
        self._threads_per_batch = threads
        self._idle_exit = idle_exit
        self._pool: ThreadPoolExecutor | None = None
        self._cond = threading.Condition()
        self._queue: dict[Target, None] = {}  # insertion-ordered set
        self._active = 0
        self._dispatchers = 0

    def submit(self, targets: Iterable[Target]) -> None:
        with self._cond:
            for target in targets:
                # A learner already waiting picks up this newer score too.
                self._queue.setdefault(target, None)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._threads_per_batch, thread_name_prefix="passback-send"
                )
            if self._dispatchers < DISPATCHERS:
                self._dispatchers += 1
                threading.Thread(
                    target=self._dispatch, args=(self._pool,), name="passback-dispatch",
                    daemon=True,
                ).start()
            self._cond.notify()

    def _dispatch(self, pool: ThreadPoolExecutor) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: bool(self._queue), self._idle_exit):
                    # Idle: the threads go, and come back with the next score.
                    self._dispatchers -= 1
                    if self._dispatchers == 0 and self._pool is pool:
                        self._pool = None
                        pool.shutdown(wait=False)
                    return
                batch = list(self._queue)[:BATCH]
                for target in batch:
                    del self._queue[target]
                self._active += 1
            try:
                deliver(self._app, batch, pool, self._threads_per_batch)
            except Exception:
                # The rows stay pending; the worker retries them.
                log.exception("passback: delivery of %d learners failed", len(batch))
            finally:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._active, timeout)


_lock = threading.Lock()


def _sender(app: Flask) -> Sender:
    found: Sender | None = app.extensions.get("lti_tool.passback.sender")
    if found is None:
        with _lock:
            found = app.extensions.get("lti_tool.passback.sender")
            if found is None:
                found = Sender(app, int(app.config["PASSBACK_SENDER_THREADS"]))
                app.extensions["lti_tool.passback.sender"] = found
    return found


def submit(app: Flask, targets: Iterable[Target]) -> None:
    mode = app.config["PASSBACK_DELIVERY"]
    if mode == "off":
        return
    if mode == "inline":
        for target in targets:
            try:
                deliver_target(app, target)
            except Exception:
                log.exception("passback: delivery for %s failed", target)
        return
    _sender(app).submit(targets)


def wait_idle(app: Flask, timeout: float = 30.0) -> bool:
    """True once the sender has nothing queued or in flight (tests and the bench use it)."""
    found: Sender | None = app.extensions.get("lti_tool.passback.sender")
    return True if found is None else found.wait_idle(timeout)
