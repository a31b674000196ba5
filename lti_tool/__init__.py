"""LTI 1.3 tool for the Spinning® instructor online recertification course."""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import admin, cache, config, content, db, deeplink, i18n, learning, record, web
from .course import views as course_views
from .identity import models as _identity_models  # noqa: F401  (tables registered on Base)
from .lti import init_app as lti_init_app
from .passback import init_app as passback_init_app


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = web.ToolApp(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.load_secret_key(app.instance_path)
    app.config["DATABASE_URL"] = config.normalise_database_url(app.config["DATABASE_URL"])
    logging.basicConfig(level=app.config["LOG_LEVEL"])

    hops = int(app.config["TRUSTED_PROXY_HOPS"])
    if hops > 0:
        # Only as many hops as the operator trusts: a client-sent X-Forwarded-* is not believed.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops
        )

    db.init_app(app)
    cache.init_app(app)
    i18n.init_app(app)
    web.init_app(app)
    lti_init_app(app)
    content.init_app(app)
    passback_init_app(app)
    learning.init_app(app)
    record.init_app(app)
    admin.init_app(app)
    deeplink.init_app(app)
    app.register_blueprint(course_views.bp)
    if app.config["GC_FREEZE"] and not app.testing:
        # A server process builds one app: what exists now lives as long as the process.
        gc.collect()
        gc.freeze()
    return app
