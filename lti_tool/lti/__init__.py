"""The LTI 1.3 adapter: everything between the LMS and the rest of the tool.

Public surface: `init_app(app)`, the `lti` blueprint (/lti/login, /lti/launch, /lti/jwks,
/lti/config.json, /lti/register), the `flask lti` CLI group, `services(app)` for the shared
registry, platform keys and HTTP client, and `set_landing(app, view)` for the page a launch opens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests
from flask import Flask, current_app
from flask.sansio.app import App
from flask.typing import ResponseReturnValue

from .platform_keys import PlatformKeys
from .registry import Registry

if TYPE_CHECKING:
    from ..identity.service import LaunchIdentity

USER_AGENT = "SpinningRecertificationLTI/1.0 (+pylti1p3)"


@dataclass
class LtiServices:
    registry: Registry
    platform_keys: PlatformKeys
    http: requests.Session


def services(app: Flask | None = None) -> LtiServices:
    return (app or current_app).extensions["lti_tool.lti"]


# The page a resource-link launch opens, given who launched from which link.
Landing = Callable[["LaunchIdentity"], ResponseReturnValue]
_LANDING = "lti_tool.lti.landing"


def set_landing(app: App, landing: Landing) -> None:
    """Let the course render the launch's first page in the launch response itself.

    Without one the launch redirects to the course home. Rendering it at once spares the
    learner's browser a round trip on every launch (and the server a request: bench/launch).
    """
    app.extensions[_LANDING] = landing


def landing(app: Flask | None = None) -> Landing | None:
    return (app or current_app).extensions.get(_LANDING)


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
