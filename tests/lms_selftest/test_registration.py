"""LTI Dynamic Registration: OpenID configuration, registration endpoint, then a launch."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.lms import Browser, TestPlatform
from tests.lms import claims as C
from tests.lms_selftest.fake_tool import FakeTool


def registration_body(tool: FakeTool) -> dict[str, Any]:
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": tool.url + "/login",
        "redirect_uris": [tool.url + "/launch"],
        "client_name": "Recertification course",
        "jwks_uri": tool.url + "/jwks",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": f"{C.SCOPE_SCORE} {C.SCOPE_LINEITEM} {C.SCOPE_NRPS}",
        C.TOOL_CONFIGURATION: {
            "domain": "127.0.0.1",
            "target_link_uri": tool.url + "/launch",
            "claims": ["iss", "sub", "name", "email"],
            "custom_parameters": {"lang": "$Message.locale"},
            "messages": [
                {"type": "LtiDeepLinkingRequest", "target_link_uri": tool.url + "/launch"}
            ],
        },
    }


def test_happy_path_then_launch(lms: TestPlatform, tool: FakeTool) -> None:
    config_url, token = lms.start_registration()
    assert config_url == lms.openid_config_url
    auth = {"Authorization": f"Bearer {token}"}
    config = requests.get(config_url, headers=auth, timeout=5).json()
    assert config["issuer"] == lms.issuer
    assert config["authorization_endpoint"] == lms.auth_url
    assert config["token_endpoint"] == lms.token_url and config["jwks_uri"] == lms.jwks_url
    assert config["registration_endpoint"] == lms.registration_url
    assert config["response_types_supported"] == ["id_token"]
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    platform = config[C.PLATFORM_CONFIGURATION]
    assert {m["type"] for m in platform["messages_supported"]} == set(C.MESSAGE_TYPES)
    assert "version" in platform and "product_family_code" in platform and platform["variables"]

    resp = requests.post(
        config["registration_endpoint"], json=registration_body(tool), headers=auth, timeout=5
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    client_id = body["client_id"]
    deployment_id = body[C.TOOL_CONFIGURATION]["deployment_id"]
    assert body["client_name"] == "Recertification course"
    [record] = lms.registrations
    assert record.ok and record.client_id == client_id and record.deployment_id == deployment_id
    reg = lms.tools[client_id]
    assert reg.scopes == [C.SCOPE_SCORE, C.SCOPE_LINEITEM, C.SCOPE_NRPS]
    assert reg.deep_link_url == tool.url + "/launch" and reg.source == "dynamic"

    tool.client_id = client_id
    plan = lms.prepare_launch(client_id, deployment_id, "u-1", "ctx-1", locale="de-DE")
    with Browser() as b:
        claims = b.launch(plan).json()["claims"]
    assert claims[C.DEPLOYMENT_ID] == deployment_id and claims[C.CUSTOM] == {"lang": "de-DE"}
    assert tool.token_request([C.SCOPE_SCORE]).status_code == 200
    again = requests.post(
        lms.registration_url, json=registration_body(tool), headers=auth, timeout=5
    )
    assert again.status_code == 401, "the registration token is single use"


def test_configuration_needs_the_token(lms: TestPlatform) -> None:
    assert requests.get(lms.openid_config_url, timeout=5).status_code == 401
    bad = requests.get(lms.openid_config_url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bad.status_code == 401
    _, expired = lms.start_registration(ttl=-1)
    late = requests.get(
        lms.openid_config_url, headers={"Authorization": f"Bearer {expired}"}, timeout=5
    )
    assert late.status_code == 401


def _break(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is None:
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    return out


TOOLCONF = C.TOOL_CONFIGURATION


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        (("application_type",), "native", "invalid_client_metadata"),
        (("grant_types",), ["client_credentials"], "invalid_client_metadata"),
        (("response_types",), ["code"], "invalid_client_metadata"),
        (("token_endpoint_auth_method",), "client_secret_basic", "invalid_client_metadata"),
        (("client_name",), None, "invalid_client_metadata"),
        (("redirect_uris",), ["http://tool.example/launch"], "invalid_redirect_uri"),
        (("jwks_uri",), None, "invalid_client_metadata"),
        (
            ("scope",),
            "https://purl.imsglobal.org/spec/lti-ags/scope/everything",
            "invalid_client_metadata",
        ),
        ((TOOLCONF,), None, "invalid_client_metadata"),
        ((TOOLCONF, "domain"), "tool.example", "invalid_client_metadata"),
        ((TOOLCONF, "target_link_uri"), None, "invalid_client_metadata"),
        (
            (TOOLCONF, "messages"),
            [{"type": "LtiSubmissionReviewRequest"}],
            "invalid_client_metadata",
        ),
    ],
)
def test_invalid_registrations(
    lms: TestPlatform, tool: FakeTool, path: tuple[str, ...], value: Any, code: str
) -> None:
    _, token = lms.start_registration()
    resp = requests.post(
        lms.registration_url,
        json=_break(registration_body(tool), path, value),
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert resp.status_code == 400 and resp.json()["error"] == code, resp.text
    assert not lms.registrations[-1].ok and lms.registrations[-1].error
    # A rejected attempt does not burn the token.
    ok = requests.post(
        lms.registration_url,
        json=registration_body(tool),
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert ok.status_code == 200


def test_registration_page_opens_the_tool(lms: TestPlatform) -> None:
    page = requests.get(
        lms.registration_page_url("http://127.0.0.1:9/register?x=1"), timeout=5
    ).text
    src = page.split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    query = parse_qs(urlsplit(src).query)
    assert query["x"] == ["1"] and query["openid_configuration"] == [lms.openid_config_url]
    assert query["registration_token"][0] in lms.registration_tokens
    assert "org.imsglobal.lti.close" in page
    requests.post(lms.url + "/admin/register/closed", json={"data": {"subject": "x"}}, timeout=5)
    assert lms.registration_closed == [{"data": {"subject": "x"}}]
