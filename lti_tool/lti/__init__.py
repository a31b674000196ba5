"""The LTI 1.3 adapter: everything between the LMS and the rest of the tool.

Public surface: `init_app(app)`, the `lti` blueprint (/lti/login, /lti/launch, /lti/jwks,
/lti/config.json, /lti/register), the `flask lti` CLI group, `services(app)` for the shared
registry, platform keys and HTTP client, and `current_launch()` for the launch of the session.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from flask import Flask, current_app

from .platform_keys import PlatformKeys
from .registry import Registry

USER_AGENT = "SpinningRecertificationLTI/1.0 (+pylti1p3)"


@dataclass
class LtiServices:
    registry: Registry
    platform_keys: PlatformKeys
    http: requests.Session


def services(app: Flask | None = None) -> LtiServices:
    return (app or current_app).extensions["lti_tool.lti"]


def init_app(app: Flask) -> None:
    http = requests.Session()
    http.headers["User-Agent"] = USER_AGENT
    cfg = app.config
    app.extensions["lti_tool.lti"] = LtiServices(
        registry=Registry(ttl=cfg["LTI_REGISTRY_CACHE_TTL"]),
        platform_keys=PlatformKeys(
            http,
            ttl=cfg["LTI_JWKS_CACHE_TTL"],
            refetch_interval=cfg["LTI_JWKS_REFETCH_MIN_INTERVAL"],
            timeout=cfg["LTI_HTTP_TIMEOUT"],
        ),
        http=http,
    )
    from . import cli, views

    app.register_blueprint(views.bp)
    app.cli.add_command(cli.lti_cli)
    if cfg.get("AUTO_MIGRATE"):
        from .. import db
        from .keys import ensure_key

        with app.app_context(), db.standalone_session() as s:
            ensure_key(s)
