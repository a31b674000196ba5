"""Real headless Chromium (Debian's, via Playwright) against the tool and the test LMS over TLS.

The LMS page (https://127.0.0.1:P2) frames the tool (https://localhost:P1): two sites, as in
production, so third-party cookie blocking really applies. axe-core comes from npm at test time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Flask

from tests.conftest import LiveServer, connect
from tests.lms import TestPlatform
from tests.lms import claims as C

CHROMIUM = "/usr/bin/chromium"
HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).startswith(str(HERE)):
            item.add_marker(pytest.mark.browser)
            if not Path(CHROMIUM).exists():
                item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is not installed"))


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is needed to install axe-core")
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE,
                       check=True, timeout=300)
    return AXE.read_text(encoding="utf-8")


@dataclass
class Tls:
    ca_file: Path
    server_ctx: ssl.SSLContext
    spki: str  # base64 SHA-256 of the server key, for --ignore-certificate-errors-spki-list


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Tls(ca_file, ctx, base64.b64encode(hashlib.sha256(spki).digest()).decode())


@dataclass
class TlsEnv:
    app: Flask
    tool: LiveServer
    lms: TestPlatform
    client_id: str = "tool-1"
    deployment_id: str = "dep-1"
    context_id: str = "ctx-1"


@pytest.fixture
def tls_env(app: Flask, tls: Tls, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsEnv]:
    # The tool fetches the LMS's keys and posts scores over TLS with our throwaway CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
    tool = LiveServer(app, host="localhost", ssl_context=tls.server_ctx)
    with TestPlatform(tls.server_ctx, http_verify=str(tls.ca_file)) as lms:
        e = TlsEnv(app, tool, lms)
        connect(app, tool, lms, e.client_id, (e.deployment_id,))
        lms.add_context(e.context_id, title="Indoor Cycling Recertification", label="SPIN-RC")
        yield e
    tool.stop()


def add_learner(lms: TestPlatform, user_id: str, name: str, locale: str) -> None:
    given, family = name.split(" ", 1)
    lms.add_user(user_id, name=name, given_name=given, family_name=family,
                 email=f"{user_id}@example.org", locale=locale)
    lms.enrol("ctx-1", user_id, roles=[C.ROLE_LEARNER])


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def chromium(playwright: Any, tmp_path: Path, tls: Tls, *, third_party_cookies: bool,
             width: int = 1280, height: int = 900) -> Any:
    """A fresh profile with third-party cookies blocked or allowed (a profile preference)."""
    profile = tmp_path / f"profile-{'allow' if third_party_cookies else 'block'}"
    (profile / "Default").mkdir(parents=True, exist_ok=True)
    prefs = {"profile": {"cookie_controls_mode": 0 if third_party_cookies else 1}}
    (profile / "Default" / "Preferences").write_text(json.dumps(prefs))
    args = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={tls.spki}",
        f"--user-data-dir={profile}", "--remote-debugging-pipe",
        f"--window-size={width},{height}",
    ]
    # Playwright's own switches turn off storage partitioning; real Chrome has it on.
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, ignore_default_args=True, args=args,
        accept_downloads=True, viewport={"width": width, "height": height},
    )


def run_axe(frame: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 AA rules on one document; returns the violations."""
    if not frame.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated over the DevTools protocol, so the page's CSP does not apply to it.
        frame.evaluate(axe_source + "\n;0")
    result = frame.evaluate(
        "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']}); return r.violations.map(v => ({id: v.id, impact: v.impact,"
        " help: v.help, nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary)"
        ".slice(0, 5)})); }",
        AXE_TAGS,
    )
    return list(result)
