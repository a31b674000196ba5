"""Delivery right after commit, on a small pool of threads in the committing process.

The web request that awarded the CECs returns at once; the pool sends in the background. If
the process dies first, the rows are still pending in the outbox and the worker sends them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from .delivery import Target, deliver_target

log = logging.getLogger(__name__)


class Sender:
    def __init__(self, app: Flask, threads: int) -> None:
        self._app = app
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="passback")
        self._lock = threading.Lock()
        self._queued: set[Target] = set()
        self._busy = 0

    def submit(self, targets: Iterable[Target]) -> None:
        for target in targets:
            with self._lock:
                # A target already waiting in the queue will pick up this newer row too.
                if target in self._queued:
                    continue
                self._queued.add(target)
                self._busy += 1
            self._pool.submit(self._run, target)

    def _run(self, target: Target) -> None:
        with self._lock:
            self._queued.discard(target)
        try:
            deliver_target(self._app, target)
        except Exception:
            # The row stays pending; the worker retries it.
            log.exception("passback: delivery for %s failed", target)
        finally:
            with self._lock:
                self._busy -= 1

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._busy == 0:
                    return True
            time.sleep(0.01)
        return False

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


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
