"""`flask --app lti_tool lti …`: the operator's commands for platforms, deployments and keys."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import delete, select

from .. import db
from ..db import utcnow
from . import keys, services
from .models import Deployment, Registration, UsedNonce


@click.group("lti", cls=AppGroup, help="LTI platform registrations, deployments and tool keys.")
def lti_cli() -> None:
    pass


def _registration(s: Any, issuer: str, client_id: str | None) -> Registration:
    reg = Registration.find(s, issuer, client_id)
    if reg is None:
        raise click.ClickException(
            f"no registration for issuer {issuer!r}"
            + (f" and client id {client_id!r}" if client_id else " (give --client-id if several)")
        )
    return reg


@lti_cli.command("add-platform")
@click.option("--issuer", help="The platform's issuer (iss).")
@click.option("--client-id", help="The client id the platform gave the tool.")
@click.option("--auth-login-url", help="The platform's OIDC authorization endpoint.")
@click.option("--token-url", help="The platform's OAuth 2 token endpoint.")
@click.option("--key-set-url", help="The platform's JWKS URL.")
@click.option("--token-audience", default=None, help="Token audience if not the token URL (D2L).")
@click.option("--deployment-id", "deployment_ids", multiple=True, help="Repeat for each.")
@click.option("--name", default="", help="A name for the operator's lists.")
@click.option(
    "--json",
    "json_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Read these fields from a JSON file (same names with underscores).",
)
@click.option("--inactive", is_flag=True, help="Store it switched off.")
def add_platform(json_file: str | None, inactive: bool, **fields: Any) -> None:
    """Register a platform (or update the one with the same issuer and client id)."""
    data = dict(fields)
    if json_file:
        loaded = json.loads(Path(json_file).read_text())
        if not isinstance(loaded, dict):
            raise click.ClickException("the JSON file must hold one object")
        for key, value in loaded.items():
            if key == "deployment_ids":
                data["deployment_ids"] = tuple(data["deployment_ids"]) + tuple(value)
            elif data.get(key) in (None, ""):
                data[key] = value
    missing = [
        k
        for k in ("issuer", "client_id", "auth_login_url", "token_url", "key_set_url")
        if not data.get(k)
    ]
    if missing:
        raise click.ClickException(
            "missing: " + ", ".join("--" + m.replace("_", "-") for m in missing)
        )
    with db.standalone_session() as s:
        reg = s.scalars(
            select(Registration).where(
                Registration.issuer == data["issuer"], Registration.client_id == data["client_id"]
            )
        ).first()
        created = reg is None
        if reg is None:
            reg = Registration(issuer=data["issuer"], client_id=data["client_id"])
            s.add(reg)
        reg.name = data.get("name") or reg.name or data["issuer"]
        reg.auth_login_url = data["auth_login_url"]
        reg.auth_token_url = data["token_url"]
        reg.auth_audience = data.get("token_audience") or None
        reg.key_set_url = data["key_set_url"]
        reg.is_active = not inactive
        reg.source = "json" if json_file else "cli"
        s.flush()
        known = {d.deployment_id for d in reg.deployments}
        for dep_id in data.get("deployment_ids") or ():
            if dep_id not in known:
                s.add(
                    Deployment(registration_id=reg.id, deployment_id=dep_id, is_active=not inactive)
                )
        s.commit()
        click.echo(
            f"{'Added' if created else 'Updated'} registration {reg.id}: "
            f"{reg.issuer} / {reg.client_id}"
        )
    services().registry.invalidate()


@lti_cli.command("platforms")
def platforms() -> None:
    """List registrations and their deployments."""
    with db.standalone_session() as s:
        regs = list(s.scalars(select(Registration).order_by(Registration.id)))
        if not regs:
            click.echo("No platforms registered.")
        for reg in regs:
            state = "active" if reg.is_active else "INACTIVE"
            click.echo(f"[{reg.id}] {reg.name or reg.issuer} ({state}, {reg.source})")
            click.echo(f"    issuer={reg.issuer} client_id={reg.client_id}")
            for dep in reg.deployments:
                dstate = "active" if dep.is_active else "INACTIVE (pending activation)"
                click.echo(f"    deployment {dep.deployment_id}: {dstate}")


def _set_active(issuer: str, client_id: str | None, deployment_id: str | None, on: bool) -> None:
    with db.standalone_session() as s:
        reg = _registration(s, issuer, client_id)
        if deployment_id:
            dep = next((d for d in reg.deployments if d.deployment_id == deployment_id), None)
            if dep is None:
                raise click.ClickException(
                    f"no deployment {deployment_id!r} in registration {reg.id}"
                )
            dep.is_active = on
            what = f"deployment {deployment_id}"
        else:
            reg.is_active = on
            what = f"registration {reg.id}"
        s.commit()
    services().registry.invalidate()
    click.echo(f"{what} {'activated' if on else 'deactivated'}.")


def _activation_command(on: bool) -> click.Command:
    @click.command("activate" if on else "deactivate")
    @click.option("--issuer", required=True)
    @click.option("--client-id", default=None)
    @click.option(
        "--deployment-id",
        default=None,
        help="Only this deployment; without it the whole registration.",
    )
    @with_appcontext
    def command(issuer: str, client_id: str | None, deployment_id: str | None) -> None:
        _set_active(issuer, client_id, deployment_id, on)

    command.help = (
        "Activate" if on else "Deactivate"
    ) + " a registration or one of its deployments."
    return command


lti_cli.add_command(_activation_command(True))
lti_cli.add_command(_activation_command(False))


@lti_cli.command("invite")
@click.option("--base-url", default=None, help="The tool's public base URL (else PUBLIC_BASE_URL).")
@click.option("--note", default="", help="Who the invite is for.")
def invite(base_url: str | None, note: str) -> None:
    """Print a one-time dynamic registration URL whose registration arrives active."""
    from .dynreg import create_invite

    base = (base_url or current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    if not base:
        raise click.ClickException("give --base-url or set PUBLIC_BASE_URL")
    token = create_invite(note)
    click.echo(f"{base}/lti/register?invite={token}")


@lti_cli.command("rotate-key")
@click.option(
    "--publish-delay",
    type=int,
    default=None,
    help="Seconds the new key is published before it signs.",
)
@click.option(
    "--grace",
    type=int,
    default=None,
    help="Seconds the previous key stays published after the new one signs.",
)
def rotate_key(publish_delay: int | None, grace: int | None) -> None:
    """Add a new signing key; keep the previous one published for a grace period."""
    cfg = current_app.config
    with db.standalone_session() as s:
        new = keys.rotate(
            s,
            cfg["LTI_KEY_PUBLISH_DELAY"] if publish_delay is None else publish_delay,
            cfg["LTI_KEY_GRACE_PERIOD"] if grace is None else grace,
        )
        click.echo(f"New key {new.kid} published; it signs from {new.activates_at.isoformat()}.")


@lti_cli.command("keys")
def list_keys() -> None:
    """List the tool's keys."""
    with db.standalone_session() as s:
        for k in keys.list_keys(s):
            retire = k.retires_at.isoformat() if k.retires_at else "-"
            click.echo(f"{k.kid}  signs from {k.activates_at.isoformat()}  retires {retire}")


@lti_cli.command("prune")
def prune() -> None:
    """Delete used nonces and expired cache entries (safe to run from cron)."""
    horizon = utcnow() - timedelta(seconds=2 * current_app.config["LTI_ID_TOKEN_MAX_AGE"])
    with db.standalone_session() as s:
        result = s.execute(delete(UsedNonce).where(UsedNonce.used_at < horizon))
        s.commit()
        click.echo(f"Pruned {result.rowcount} used nonces.")  # type: ignore[attr-defined]
    from .. import cache

    click.echo(f"Removed {cache.remove_expired()} expired cache entries.")
