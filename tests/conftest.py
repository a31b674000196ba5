"""Fixtures: the tool (built with its own config), served on 127.0.0.1, and the strict test LMS.

Embedded defaults by default (SQLite + file cache). With TEST_DATABASE_URL and TEST_REDIS_URL the
same tests run on PostgreSQL and Redis, each test on a clean schema and its own key prefix.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from werkzeug.serving import BaseWSGIServer, make_server

from lti_tool import create_app, db
from lti_tool.passback.sender import wait_idle
from tests.lms import Browser, TestPlatform
from tests.lms import claims as C

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")


_PAGE_URL = re.compile(r'<script src="[^"]*/page_url\.js" data-url="([^"]*)"')


def landed_url(resp: requests.Response) -> str:
    """The address a browser shows for a page: a launch answers with its first page and the
    page gives itself its own address (static/page_url.js, which this client does not run)."""
    found = _PAGE_URL.search(resp.text)
    return urljoin(resp.url, html.unescape(found.group(1))) if found else resp.url


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A database of its own for this test run, dropped at the end."""
    if not PG_URL:
        yield None
        return
    import psycopg

    name = f"lti_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _config(tmp_path: Path, database_url: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": secrets.token_hex(16),
        "DATABASE_URL": database_url,
        "LTI_HTTP_TIMEOUT": 5.0,
        "LTI_JWKS_REFETCH_MIN_INTERVAL": 0,
    }
    if REDIS_URL:
        cfg.update(
            CACHE_TYPE="RedisCache",
            CACHE_REDIS_URL=REDIS_URL,
            CACHE_KEY_PREFIX=f"test-{secrets.token_hex(4)}:",
        )
    else:
        cfg.update(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path / "cache"))
    return cfg


@pytest.fixture
def app(tmp_path: Path, pg_database: str | None) -> Iterator[Flask]:
    url = pg_database or f"sqlite:///{tmp_path}/tool.sqlite3"
    application = create_app(_config(tmp_path, url))
    yield application
    # Scores a test's last request committed may still be on their way to the test LMS: let
    # the background sender finish before the tables go (on PostgreSQL its inserts and the
    # TRUNCATE below would otherwise deadlock).
    wait_idle(application, 30)
    engine = application.extensions["lti_tool.engine"]
    if pg_database:
        tables = ", ".join(f'"{t.name}"' for t in db.Base.metadata.sorted_tables)
        for attempt in range(3):
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                break
            except OperationalError:
                # A request thread still closing its transaction; the next test must start
                # from empty tables, so try again.
                if attempt == 2:
                    raise
                time.sleep(0.5)
    engine.dispose()


class LiveServer:
    """The tool served over HTTP(S) on 127.0.0.1 in a thread, as a real LMS would reach it."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", ssl_context: Any = None) -> None:
        self._server: BaseWSGIServer = make_server(
            host, 0, app, threaded=True, ssl_context=ssl_context
        )
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def tool(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def lms() -> Iterator[TestPlatform]:
    with TestPlatform() as platform:
        yield platform


@dataclass
class Env:
    """One registered tool at one LMS, with a course and a learner and an instructor."""

    app: Flask
    tool: LiveServer
    lms: TestPlatform
    client_id: str = "tool-1"
    deployment_id: str = "dep-1"
    context_id: str = "ctx-1"
    browsers: list[Browser] = field(default_factory=list)

    @property
    def login_url(self) -> str:
        return self.tool.url + "/lti/login"

    def plan(self, user_id: str = "learner-1", **kw: Any) -> Any:
        kw.setdefault("deployment_id", self.deployment_id)
        kw.setdefault("context_id", self.context_id)
        kw.setdefault("resource_link_id", "rl-1")
        return self.lms.prepare_launch(self.client_id, user_id=user_id, **kw)

    def launch(
        self,
        user_id: str = "learner-1",
        browser: Browser | None = None,
        method: str = "GET",
        **kw: Any,
    ) -> requests.Response:
        b = browser or self.browser()
        return b.launch(self.plan(user_id, **kw), login_url=self.login_url, method=method)

    def browser(self, **kw: Any) -> Browser:
        b = Browser(**kw)
        self.browsers.append(b)
        return b

    def cli(self, *args: str) -> Any:
        result = self.app.test_cli_runner().invoke(args=list(args))
        return result

    def count(self, model: Any) -> int:
        with self.app.app_context(), db.standalone_session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)


def connect(app: Flask, tool: LiveServer, lms: TestPlatform, client_id: str = "tool-1",
            deployment_ids: tuple[str, ...] = ("dep-1",)) -> None:
    """Register the tool at the LMS and the LMS at the tool (by the operator's CLI)."""
    lms.register_tool(
        client_id,
        login_url=tool.url + "/lti/login",
        redirect_uris=[tool.url + "/lti/launch"],
        jwks_url=tool.url + "/lti/jwks",
        target_link_uri=tool.url + "/lti/launch",
        deployment_ids=list(deployment_ids),
    )
    result = app.test_cli_runner().invoke(args=[
        "lti", "add-platform", "--issuer", lms.issuer, "--client-id", client_id,
        "--auth-login-url", lms.auth_url, "--token-url", lms.token_url,
        "--key-set-url", lms.jwks_url, "--deployment-id", deployment_ids[0], "--name", "Test LMS",
    ])
    assert result.exit_code == 0, result.output


@pytest.fixture
def env(app: Flask, tool: LiveServer, lms: TestPlatform) -> Iterator[Env]:
    e = Env(app, tool, lms)
    # dep-new is known to the LMS only: launches from it test unknown-deployment handling.
    connect(app, tool, lms, e.client_id, (e.deployment_id, "dep-new"))
    lms.add_context(e.context_id, title="Indoor Cycling Recertification", label="SPIN-RC")
    lms.add_user(
        "learner-1",
        name="Ana García",
        given_name="Ana",
        family_name="García",
        email="ana@example.org",
        locale="en-US",
    )
    lms.add_user(
        "learner-2",
        name="Ben Becker",
        given_name="Ben",
        family_name="Becker",
        email="ben@example.org",
    )
    lms.add_user("teacher-1", name="Tina Teacher", email="tina@example.org")
    lms.enrol(e.context_id, "learner-1", roles=[C.ROLE_LEARNER])
    lms.enrol(e.context_id, "learner-2", roles=[C.ROLE_LEARNER])
    lms.enrol(e.context_id, "teacher-1", roles=[C.ROLE_INSTRUCTOR])
    yield e
    for b in e.browsers:
        b.close()
