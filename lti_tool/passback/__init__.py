"""CEC grade passback to the LMS gradebook (LTI Assignment and Grade Services 2.0).

Public surface:

- `enqueue_score(s, ...)`: add a score to the outbox in the caller's transaction; it is sent
  right after the caller commits, and retried by the worker until the platform has it.
- `status(s, context_pk)`, `resend_learner(s, ...)`, `resend_context(s, ...)`: for the admin.
- `init_app(app)`: the `flask passback` CLI (`run [--once] [--batch N]`, `status`).

How it works, how to run the worker (systemd, cron) and its settings: README.md beside this.
"""

from __future__ import annotations

from flask import Flask

from .admin import LearnerStatus, resend_context, resend_learner, status
from .models import AccessToken, LineItemLink, OutboxScore, PassbackTarget
from .outbox import enqueue_score

__all__ = [
    "AccessToken",
    "LearnerStatus",
    "LineItemLink",
    "OutboxScore",
    "PassbackTarget",
    "enqueue_score",
    "init_app",
    "resend_context",
    "resend_learner",
    "status",
]


def init_app(app: Flask) -> None:
    from .cli import passback_cli
    from .jobs import make_services

    for key, default in DEFAULTS.items():
        app.config.setdefault(key, default)
    if not app.config.get("PASSBACK_LEASE_SECONDS"):
        # Longer than any one HTTP call can take, so a live sender never loses its lease.
        app.config["PASSBACK_LEASE_SECONDS"] = max(30.0, 4 * float(app.config["LTI_HTTP_TIMEOUT"]))
    app.extensions["lti_tool.passback"] = make_services(app)
    app.cli.add_command(passback_cli)


DEFAULTS: dict[str, object] = {
    "PASSBACK_DELIVERY": "thread",
    "PASSBACK_SENDER_THREADS": 4,
    "PASSBACK_WORKER_THREADS": 8,
    "PASSBACK_POLL_INTERVAL": 2.0,
    "PASSBACK_RETRY_BASE": 30.0,
    "PASSBACK_RETRY_MAX": 3600.0,
    "PASSBACK_GIVE_UP_AFTER": 14 * 24 * 3600.0,
    "PASSBACK_LEASE_SECONDS": 0.0,
    "PASSBACK_TOKEN_MARGIN": 60.0,
}
