"""Fault injection for service calls (scores, line items, results, NRPS, token)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Response

from .web import error

KINDS = ("500", "503", "timeout", "429", "401", "400_not_gradable")
# Which endpoint families a fault scope covers.
SCOPES: dict[str, tuple[str, ...]] = {
    "scores": ("scores",),
    "lineitems": ("lineitems",),
    "results": ("results",),
    "ags": ("scores", "lineitems", "results"),
    "nrps": ("nrps",),
    "token": ("token",),
    "any": ("scores", "lineitems", "results", "nrps", "token"),
}


@dataclass
class Fault:
    kind: str
    remaining: int
    scope: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultEvent:
    kind: str
    endpoint: str
    path: str
    at: float = field(default_factory=time.time)


class FaultQueue:
    """``push("503", count=2)`` makes the next two score POSTs fail with 503.

    Options: ``scope`` ("scores" default, "lineitems", "results", "ags" = all AGS calls,
    "nrps", "token", "any"); ``retry_after`` seconds for 429/503; ``seconds`` to sleep
    for "timeout" (default 3) and ``apply=True`` to process the call after the sleep
    (the tool has given up, but the platform did record it).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self.log: list[FaultEvent] = []

    def push(self, kind: str, count: int = 1, *, scope: str = "scores", **options: Any) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {KINDS}")
        if scope not in SCOPES:
            raise ValueError(f"unknown fault scope {scope!r}; use one of {tuple(SCOPES)}")
        with self._lock:
            self._queue.append(Fault(kind, count, scope, options))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._queue)

    def take(self, endpoint: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._queue:
                if endpoint in SCOPES[fault.scope]:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._queue.remove(fault)
                    self.log.append(FaultEvent(fault.kind, endpoint, path))
                    return fault
        return None


def fault_response(fault: Fault) -> Response | None:
    """The response a fault produces, or None when the call should proceed (timeout+apply)."""
    opts = fault.options
    if fault.kind == "timeout":
        time.sleep(float(opts.get("seconds", 3.0)))
        if opts.get("apply"):
            return None
        return error(504, "gateway_timeout", "injected fault: upstream timed out")
    if fault.kind == "500":
        return error(500, "server_error", "injected fault: internal server error")
    if fault.kind == "503":
        headers = {"Retry-After": str(opts["retry_after"])} if "retry_after" in opts else None
        return error(503, "temporarily_unavailable", "injected fault: service unavailable", headers)
    if fault.kind == "429":
        retry = str(opts.get("retry_after", 1))
        return error(
            429, "rate_limited", "injected fault: too many requests", {"Retry-After": retry}
        )
    if fault.kind == "401":
        return error(
            401,
            "invalid_token",
            "injected fault: access token expired",
            {
                "WWW-Authenticate": 'Bearer realm="lms", error="invalid_token", '
                'error_description="The access token expired"'
            },
        )
    if fault.kind == "400_not_gradable":
        return error(400, "invalid_request", "Incorrect score received: user is not gradable")
    raise AssertionError(fault.kind)
