"""One delivery attempt: what is sent (AGS §3.4 score), to where, and how it ended."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from flask import Flask

from ..db import as_utc
from .http import SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE
from .models import OutboxScore
from .tokens import Platform, TokenCache

OK = "ok"
Target = tuple[int, int]  # (resource_link_pk, instructor_id)


@dataclass
class Services:
    """Per-app state shared by the sender threads and the worker."""

    http: requests.Session
    tokens: TokenCache
    lock: threading.Lock = field(default_factory=threading.Lock)
    score_posts: int = 0

    def count_post(self) -> None:
        with self.lock:
            self.score_posts += 1


def services(app: Flask) -> Services:
    found: Services = app.extensions["lti_tool.passback"]
    return found


def make_services(app: Flask) -> Services:
    http = requests.Session()
    cfg = app.config
    threads = int(cfg["PASSBACK_WORKER_THREADS"]) + int(cfg["PASSBACK_SENDER_THREADS"])
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=max(threads, 10))
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    from ..lti import USER_AGENT

    http.headers["User-Agent"] = USER_AGENT
    return Services(http=http, tokens=TokenCache(app, http))


@dataclass(frozen=True)
class Job:
    row_id: int
    target_id: int
    instructor_id: int
    owner: str
    attempts: int
    platform: Platform
    ags: dict[str, Any]
    resource_link_pk: int
    resource_link_id: str
    resource_id: str
    course_language: str
    score_maximum: float
    body: dict[str, Any]
    lineitem_url: str | None
    # The URL came from the launch (AGS claim `lineitem`), not from find-or-create.
    lineitem_from_claim: bool
    created_at: datetime

    @property
    def target(self) -> Target:
        return (self.resource_link_pk, self.instructor_id)


@dataclass
class Outcome:
    kind: str
    message: str | None = None
    status: int | None = None
    retry_after: float | None = None
    lineitem_url: str | None = None
    stale_lineitem: bool = False
    token_fresh: bool = False


def wire_time(value: datetime) -> str:
    # ISO 8601 with microseconds and an explicit offset (AGS §3.4.4 timestamp).
    return as_utc(value).isoformat(timespec="microseconds")


def number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def score_body(row: OutboxScore, user_id: str, timestamp: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "userId": user_id,
        "activityProgress": row.activity_progress,
        "gradingProgress": row.grading_progress,
        "timestamp": wire_time(timestamp),
    }
    given = row.score_given
    # Canvas shows a score of 0 as "needs grading" (canvas-lms#1977): until there is something
    # to score, only progress is reported; an explicit final 0 is still sent.
    if given is not None and (given > 0 or row.grading_progress == "FullyGraded"):
        body["scoreGiven"] = number(given)
        body["scoreMaximum"] = number(row.score_maximum)
    if row.comment:
        body["comment"] = row.comment
    return body


def token_scopes(ags: dict[str, Any]) -> list[str]:
    granted = ags.get("scope")
    wanted = (SCOPE_SCORE, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY)
    if isinstance(granted, list):
        scopes = [s for s in wanted if s in granted]
        # lineitem implies reading; asking for both is harmless but not needed.
        if SCOPE_LINEITEM in scopes and SCOPE_LINEITEM_READONLY in scopes:
            scopes.remove(SCOPE_LINEITEM_READONLY)
        return scopes
    return [SCOPE_SCORE]


def lease_seconds(app: Flask) -> float:
    return float(app.config["PASSBACK_LEASE_SECONDS"])


def retry_delay(app: Flask, attempts: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after + random.uniform(0, min(1.0, retry_after / 10))  # noqa: S311
    base = float(app.config["PASSBACK_RETRY_BASE"])
    cap = float(app.config["PASSBACK_RETRY_MAX"])
    delay = min(cap, base * 2 ** min(max(attempts - 1, 0), 30))
    # Full jitter on the upper half: a platform back from an outage is not hit by everyone at once.
    return random.uniform(delay / 2, delay)  # noqa: S311
