"""The platform over TLS (browser tests need https for SameSite=None; Secure cookies)."""

from __future__ import annotations

import ssl
from pathlib import Path

import requests
import trustme

from tests.lms import Browser, TestPlatform
from tests.lms import claims as C
from tests.lms_selftest.fake_tool import FakeTool


def test_launch_and_services_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TestPlatform(server_ctx, http_verify=str(ca_file)) as lms, FakeTool(lms) as tool:
        assert lms.url.startswith("https://127.0.0.1:") and lms.issuer == lms.url
        assert requests.get(lms.jwks_url, verify=str(ca_file), timeout=5).status_code == 200
        tool.verify = str(ca_file)
        tool.register()
        lms.add_context("ctx-1")
        lms.add_user("u-1", name="Ana")
        lms.enrol("ctx-1", "u-1")
        plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
        with Browser(verify=str(ca_file)) as b:
            resp = b.launch(plan)
        assert resp.status_code == 200, resp.text
        assert resp.json()["claims"][C.AGS_ENDPOINT]["lineitems"].startswith("https://")
        course = requests.get(lms.course_url(plan), verify=str(ca_file), timeout=5)
        assert course.status_code == 200 and 'name="tool"' in course.text
