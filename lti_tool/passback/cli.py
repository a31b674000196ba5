"""`flask --app lti_tool passback ...`: the retry worker and a summary of the outbox."""

from __future__ import annotations

import signal
from types import FrameType

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from .. import db
from .models import HELD, PENDING, OutboxScore
from .worker import Worker

passback_cli = AppGroup("passback", help="Grade passback (LTI AGS) to the LMS gradebooks.")


@passback_cli.command("run")
@click.option("--once", is_flag=True, help="Send what is due now, then exit (for cron).")
@click.option("--batch", default=100, show_default=True, help="Learners per pass.")
@click.option("--threads", default=None, type=int, help="Parallel deliveries (default: config).")
def run_command(once: bool, batch: int, threads: int | None) -> None:
    """Send pending scores, retrying with back-off; runs until stopped (SIGTERM/SIGINT)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = Worker(app, batch, threads or int(app.config["PASSBACK_WORKER_THREADS"]))

    def stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if once:
            worker.drain()
        else:
            click.echo("passback worker running; stop with Ctrl-C or SIGTERM")
            worker.run_forever(float(app.config["PASSBACK_POLL_INTERVAL"]))
    finally:
        worker.close()
    click.echo(f"passback: {worker.attempts} deliveries attempted")


@passback_cli.command("status")
def status_command() -> None:
    """Scores in the outbox by state."""
    with db.standalone_session() as s:
        rows = s.execute(
            select(OutboxScore.state, func.count()).group_by(OutboxScore.state)
        ).all()
        held = s.scalar(
            select(func.count()).where(OutboxScore.state == PENDING, OutboxScore.last_error == HELD)
        )
    counts = {state: n for state, n in rows}
    for state in ("pending", "sent", "failed", "superseded"):
        click.echo(f"{state:<11} {counts.get(state, 0)}")
    if held:
        click.echo(f"  {held} pending held: their platform is deactivated (lti activate)")
