"""The baseline for `bench/launch.py`: a minimal pylti1p3 Flask tool, as pylti1p3's Flask example.

FlaskOIDCLogin + FlaskMessageLaunch with a FlaskCacheDataStorage over Flask-Caching, public-key
caching on (`set_public_key_caching(storage, cache_lifetime=7200)`), one ToolConfDict
registration for the bench platform, and three routes: /login, /launch (a tiny HTML page) and
/jwks. Two differences from the example, both needed under gunicorn with two workers and both
in the baseline's favour or neutral:

- the cache is a FileSystemCache in a directory both workers share (the example's "simple"
  cache is per process, so a login served by one worker could not be launched by the other),
  with the same threshold our tool uses (pruning at the default 500 entries would delete
  pending logins under load); `BENCH_MIN_REDIS_URL` switches it to Redis like our tool;
- the tool configuration is built once at import instead of once per request, and the cookie
  check page (`enable_check_cookies()`, a JavaScript page a bench client cannot run) is off.

Configuration, from the environment (set by `bench/launch.py`): `BENCH_MIN_CACHE_DIR`,
`BENCH_MIN_REDIS_URL`, `BENCH_MIN_SECRET_KEY`, `BENCH_MIN_PRIVATE_KEY_FILE`, `BENCH_ISSUER`,
`BENCH_MIN_CLIENT_ID`, `BENCH_AUTH_LOGIN_URL`, `BENCH_TOKEN_URL`, `BENCH_KEY_SET_URL`,
`BENCH_DEPLOYMENT_ID`.

Served with `gunicorn -w 2 -b 127.0.0.1:PORT bench.minimal_tool:app` from the repository root.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from flask import Flask, abort, jsonify
from flask_caching import Cache
from pylti1p3.contrib.flask import (
    FlaskCacheDataStorage,
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskRequest,
)
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.tool_config import ToolConfDict

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"

app = Flask(__name__)
app.config.from_mapping(
    SECRET_KEY=os.environ.get("BENCH_MIN_SECRET_KEY", "bench-minimal-tool"),
    CACHE_DEFAULT_TIMEOUT=3600,
)
if os.environ.get("BENCH_MIN_REDIS_URL"):
    app.config.update(
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=os.environ["BENCH_MIN_REDIS_URL"],
        CACHE_KEY_PREFIX="bench-minimal:",
    )
else:
    app.config.update(
        CACHE_TYPE="FileSystemCache",
        CACHE_DIR=os.environ.get(
            "BENCH_MIN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "bench-minimal-cache")
        ),
        CACHE_THRESHOLD=100_000,
    )
cache = Cache(app)


def _tool_conf() -> ToolConfDict:
    iss = os.environ.get("BENCH_ISSUER", "http://127.0.0.1")
    client_id = os.environ.get("BENCH_MIN_CLIENT_ID", "bench-minimal")
    conf = ToolConfDict(
        {
            iss: [
                {
                    "default": True,
                    "client_id": client_id,
                    "auth_login_url": os.environ.get("BENCH_AUTH_LOGIN_URL", ""),
                    "auth_token_url": os.environ.get("BENCH_TOKEN_URL", ""),
                    "auth_audience": None,
                    "key_set_url": os.environ.get("BENCH_KEY_SET_URL", ""),
                    "key_set": None,
                    "deployment_ids": [os.environ.get("BENCH_DEPLOYMENT_ID", "1")],
                }
            ]
        }
    )
    key_file = os.environ.get("BENCH_MIN_PRIVATE_KEY_FILE")
    if key_file:
        from cryptography.hazmat.primitives import serialization

        with open(key_file) as fh:
            private_pem = fh.read()
        key = serialization.load_pem_private_key(private_pem.encode(), None)
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        conf.set_private_key(iss, private_pem, client_id=client_id)
        conf.set_public_key(iss, public_pem, client_id=client_id)
    return conf


TOOL_CONF = _tool_conf()

# Compiled once (render_template_string would compile it on every request).
PAGE = app.jinja_env.from_string(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><h1>{{ title }}</h1><p>Welcome, {{ name }}.</p></body></html>
"""
)


def launch_data_storage() -> FlaskCacheDataStorage:
    return FlaskCacheDataStorage(cache)


@app.route("/login", methods=["GET", "POST"])
def login() -> Any:
    flask_request = FlaskRequest()
    target_link_uri = flask_request.get_param("target_link_uri")
    if not target_link_uri:
        abort(400)
    oidc_login = FlaskOIDCLogin(
        flask_request, TOOL_CONF, launch_data_storage=launch_data_storage()
    )
    return oidc_login.redirect(target_link_uri)


@app.route("/launch", methods=["POST"])
def launch() -> Any:
    flask_request = FlaskRequest()
    storage = launch_data_storage()
    message_launch = FlaskMessageLaunch(flask_request, TOOL_CONF, launch_data_storage=storage)
    message_launch.set_public_key_caching(storage, cache_lifetime=7200)
    data = message_launch.get_launch_data()
    link = data.get(CLAIM + "resource_link", {})
    return PAGE.render(title=link.get("title", "Launch"), name=data.get("name"))


@app.route("/jwks", methods=["GET"])
def jwks() -> Any:
    return jsonify(TOOL_CONF.get_jwks())


@app.errorhandler(LtiException)
@app.errorhandler(OIDCException)
def lti_error(exc: Exception) -> Any:
    return f"LTI error: {exc}", 400
