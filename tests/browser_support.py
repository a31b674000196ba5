"""Real headless Chromium inside an LMS-like page on another site, over HTTPS.

What it takes (shared/browser-testing-notes.md): the LMS on https://127.0.0.1 and the tool on
https://localhost are different sites; a throwaway CA (trustme) whose server key Chromium accepts by
SPKI hash; third-party cookies blocked or allowed through the profile's preferences; Playwright's
own default switches off (they disable storage partitioning, unlike real Chrome).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"
)


class Tls:
    """A CA and one server certificate for localhost and 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        import trustme

        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        leaf = x509.load_pem_x509_certificate(self.cert.cert_chain_pems[0].bytes())
        spki = leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.spki_hash = base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(ctx)
        return ctx


def chromium_args(tls: Tls) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={tls.spki_hash}",
        "--remote-debugging-pipe",
    ]


@contextmanager
def chromium(tls: Tls, profile: Path, *, block_third_party_cookies: bool) -> Iterator[Any]:
    """A persistent Chromium context whose profile blocks (or allows) third-party cookies."""
    from playwright.sync_api import sync_playwright

    default = profile / "Default"
    default.mkdir(parents=True, exist_ok=True)
    # Written both ways: left unset, this Chromium blocks them.
    prefs = {"profile": {"cookie_controls_mode": 1 if block_third_party_cookies else 0}}
    (default / "Preferences").write_text(json.dumps(prefs))
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            ignore_default_args=True,
            args=chromium_args(tls),
            headless=True,
        )
        try:
            yield context
        finally:
            context.close()
