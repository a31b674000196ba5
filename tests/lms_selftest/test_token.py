"""Client-credentials token endpoint with JWT client assertions."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.lms import TestPlatform
from tests.lms import claims as C
from tests.lms.keys import KeyPair
from tests.lms.model import ToolRegistration
from tests.lms_selftest.fake_tool import FakeTool


def test_token_happy_path(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    resp = tool.token_request([C.SCOPE_SCORE, C.SCOPE_LINEITEM])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"].split() == [C.SCOPE_SCORE, C.SCOPE_LINEITEM]
    assert resp.headers["Cache-Control"] == "no-store"
    record = lms.tokens[body["access_token"]]
    assert record.client_id == "tool-1" and record.valid()
    assert lms.token_requests == 1 and tool.jwks_hits == 1
    tool.token_request([C.SCOPE_SCORE])
    assert tool.jwks_hits == 1, "the tool JWKS is cached"


def test_replayed_assertion(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    assertion = tool.client_assertion()
    assert tool.token_request([C.SCOPE_SCORE], assertion).status_code == 200
    again = tool.token_request([C.SCOPE_SCORE], assertion)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert "jti" in again.json()["error_description"]


@pytest.mark.parametrize(
    ("claims", "status", "code"),
    [
        ({"aud": "https://wrong.example/token"}, 400, "invalid_grant"),
        ({"sub": "someone-else"}, 401, "invalid_client"),
        ({"iss": "unknown-client", "sub": "unknown-client"}, 401, "invalid_client"),
        ({"exp": int(time.time()) - 120}, 400, "invalid_grant"),
        ({"exp": int(time.time()) + 3600}, 400, "invalid_grant"),
        ({"iat": None}, 400, "invalid_grant"),
        ({"iat": int(time.time()) + 600}, 400, "invalid_grant"),
        ({"jti": None}, 400, "invalid_grant"),
    ],
)
def test_assertion_claim_checks(
    lms: TestPlatform,
    tool: FakeTool,
    reg: ToolRegistration,
    claims: dict[str, Any],
    status: int,
    code: str,
) -> None:
    resp = tool.token_request([C.SCOPE_SCORE], tool.client_assertion(**claims))
    assert (resp.status_code, resp.json()["error"]) == (status, code), resp.text


def test_aud_may_be_a_list(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    assertion = tool.client_assertion(aud=[lms.token_url, "https://other.example"])
    assert tool.token_request([C.SCOPE_SCORE], assertion).status_code == 200


def test_header_and_signature_checks(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    no_kid = tool.client_assertion(headers={})
    assert tool.token_request([C.SCOPE_SCORE], no_kid).status_code == 401
    stranger = KeyPair.generate()
    forged = tool.client_assertion(key=stranger, headers={"kid": tool.key.kid})
    resp = tool.token_request([C.SCOPE_SCORE], forged)
    assert resp.status_code == 401 and "signature" in resp.json()["error_description"]
    assert tool.token_request([C.SCOPE_SCORE], "not-a-jwt").status_code == 400


def test_unknown_kid_refetches_tool_jwks(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    assert tool.token_request([C.SCOPE_SCORE]).status_code == 200
    hits = tool.jwks_hits
    new_key = KeyPair.generate()
    tool.extra_keys.append(new_key)
    resp = tool.token_request([C.SCOPE_SCORE], tool.client_assertion(key=new_key))
    assert resp.status_code == 200 and tool.jwks_hits == hits + 1
    unknown = KeyPair.generate()
    resp = tool.token_request([C.SCOPE_SCORE], tool.client_assertion(key=unknown))
    assert resp.status_code == 401 and "kid" in resp.json()["error_description"]


def test_scope_checks(lms: TestPlatform, tool: FakeTool) -> None:
    tool.register(scopes=[C.SCOPE_SCORE])
    resp = tool.token_request([C.SCOPE_SCORE, C.SCOPE_NRPS])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    assert tool.token_request("").json()["error"] == "invalid_scope"


def test_request_shape(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    assert tool.token_request([C.SCOPE_SCORE], grant_type="password").json()["error"] == (
        "unsupported_grant_type"
    )
    assert tool.token_request([C.SCOPE_SCORE], client_assertion_type="x").json()["error"] == (
        "invalid_request"
    )
    as_json = requests.post(lms.token_url, json={"grant_type": "client_credentials"}, timeout=5)
    assert as_json.status_code == 400


def test_token_audience(tool: FakeTool) -> None:
    lms = tool.lms
    tool.register(token_audience="https://api.brightspace.example/auth/token")
    assert lms.expected_token_audience("tool-1") == "https://api.brightspace.example/auth/token"
    bad = tool.client_assertion(aud=lms.token_url)
    assert tool.token_request([C.SCOPE_SCORE], bad).status_code == 400
    good = tool.client_assertion(aud="https://api.brightspace.example/auth/token")
    assert tool.token_request([C.SCOPE_SCORE], good).status_code == 200


def test_platform_wide_token_audience() -> None:
    with TestPlatform(token_audience="https://auth.example/token") as lms, FakeTool(lms) as tool:
        tool.register()
        assert lms.token_audience == "https://auth.example/token"
        assert tool.token_request([C.SCOPE_SCORE]).status_code == 200


def test_expired_tokens_and_faults(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    lms.faults.push("503", scope="token", retry_after=2)
    resp = tool.token_request([C.SCOPE_SCORE])
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "2"
    assert tool.token_request([C.SCOPE_SCORE]).status_code == 200
    assert lms.token_requests == 2
