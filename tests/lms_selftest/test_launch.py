"""OIDC login, the auth endpoint's checks, id_token claims and tampering."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
import requests

from tests.lms import Browser, BrowserError, Tamper, TestPlatform
from tests.lms import claims as C
from tests.lms.model import ToolRegistration
from tests.lms_selftest.fake_tool import FakeTool


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body = token.split(".")[:2]

    def dec(seg: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))))

    return dec(head), dec(body)


def test_resource_link_launch_round_trip(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    plan = lms.prepare_launch(
        "tool-1",
        "dep-1",
        "u-1",
        "ctx-1",
        resource_link_id="rl-1",
        locale="de-DE",
        custom={"certification_date": "2025-03-01"},
    )
    with Browser() as b:
        resp = b.launch(plan, login_url=tool.url + "/login")
    assert resp.status_code == 200, resp.text
    claims = resp.json()["claims"]
    assert claims["iss"] == lms.issuer and claims["aud"] == "tool-1" and claims["azp"] == "tool-1"
    assert claims["sub"] == "u-1"
    assert claims[C.MESSAGE_TYPE] == "LtiResourceLinkRequest"
    assert claims[C.VERSION] == "1.3.0"
    assert claims[C.DEPLOYMENT_ID] == "dep-1"
    assert claims[C.ROLES] == [C.ROLE_LEARNER]
    assert claims[C.RESOURCE_LINK]["id"] == "rl-1"
    assert claims[C.CONTEXT] == {
        "id": "ctx-1",
        "label": "CYC101",
        "title": "Cycling 101",
        "type": [C.CONTEXT_TYPE_COURSE_OFFERING],
    }
    assert claims[C.LAUNCH_PRESENTATION]["locale"] == "de-DE"
    assert claims[C.LAUNCH_PRESENTATION]["document_target"] == "iframe"
    assert claims[C.CUSTOM] == {"certification_date": "2025-03-01"}
    assert claims["name"] == "Ana García" and claims["email"] == "ana@example.org"
    assert claims[C.AGS_ENDPOINT]["lineitems"] == lms.lineitems_url("ctx-1", "tool-1")
    assert set(claims[C.AGS_ENDPOINT]["scope"]) == set(C.AGS_SCOPES)
    assert "lineitem" not in claims[C.AGS_ENDPOINT]
    assert claims[C.NRPS] == {
        "context_memberships_url": lms.memberships_url("ctx-1"),
        "service_versions": ["2.0"],
    }
    assert claims["exp"] - claims["iat"] == lms.id_token_lifetime
    assert claims[C.TARGET_LINK_URI] == tool.url + "/launch"
    header, _ = _segments(plan.id_token or "")
    assert header["kid"] == lms.current_kid and header["alg"] == "RS256"
    assert plan.used and lms.auth_requests[-1].ok
    assert lms.auth_requests[-1].params["nonce"] == claims["nonce"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_login_initiation_methods(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration, method: str
) -> None:
    plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    assert plan.login_params == {
        "iss": lms.issuer,
        "login_hint": plan.login_hint,
        "target_link_uri": tool.url + "/launch",
        "lti_message_hint": plan.lti_message_hint,
        "client_id": "tool-1",
        "lti_deployment_id": "dep-1",
    }
    with Browser() as b:
        resp = b.launch(plan, method=method)
    assert resp.status_code == 200
    assert b.login_response is not None and b.login_response.request.method == method


def test_hints_are_single_use_and_replay_is_possible(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    with Browser() as b:
        assert b.launch(plan).status_code == 200
        # Replaying the same form: the fake tool does not burn nonces, which is the point.
        assert b.last_form is not None and set(b.last_form.fields) == {"id_token", "state"}
        b.submit_form(b.last_form)
        with pytest.raises(BrowserError, match="already used"):
            b.launch(plan)
    assert not lms.auth_requests[-1].ok


def test_browser_can_forge_state(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    with Browser() as b:
        b.start_login(plan)
        auth = b.follow_auth()
        assert auth.status_code == 200 and b.id_token
        resp = b.submit_form(override={"state": "forged"})
    assert resp.status_code == 400


def _auth_params(lms: TestPlatform, tool: FakeTool, **changes: str | None) -> dict[str, str]:
    plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    params: dict[str, str | None] = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": "tool-1",
        "redirect_uri": tool.url + "/launch",
        "login_hint": plan.login_hint,
        "lti_message_hint": plan.lti_message_hint,
        "nonce": "n-1",
        "state": "s-1",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"redirect_uri": "http://127.0.0.1:1/other"}, "invalid_request"),
        ({"client_id": "nope"}, "unauthorized_client"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"response_type": "code"}, "unsupported_response_type"),
        ({"response_mode": "query"}, "invalid_request"),
        ({"prompt": None}, "invalid_request"),
        ({"nonce": None}, "invalid_request"),
        ({"state": None}, "invalid_request"),
        ({"lti_message_hint": "other"}, "invalid_request"),
        ({"login_hint": "unknown"}, "login_required"),
    ],
)
def test_auth_request_validation(
    lms: TestPlatform,
    tool: FakeTool,
    reg: ToolRegistration,
    changes: dict[str, str | None],
    code: str,
) -> None:
    params = _auth_params(lms, tool, **changes)
    resp = requests.get(lms.auth_url, params=params, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["error"] == code
    assert lms.auth_requests[-1].ok is False


def test_auth_by_post_and_form_post_page(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    params = _auth_params(lms, tool)
    resp = requests.post(lms.auth_url, data=params, timeout=5)
    assert resp.status_code == 200
    assert f'action="{tool.url}/launch"' in resp.text and 'name="id_token"' in resp.text
    assert ".submit()" in resp.text


def test_tool_login_refusal_is_returned(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    plan_params = dict(plan.login_params)
    with Browser() as b:
        resp = b.request("GET", tool.url + "/login?iss=https://other.example", initiator=lms.url)
    assert resp.status_code == 400 and plan_params["iss"] == lms.issuer


def test_storage_target_is_sent_in_login_and_form(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    plan = lms.prepare_launch(
        "tool-1", user_id="u-1", context_id="ctx-1", lti_storage_target="post_message_forwarding"
    )
    assert plan.login_params["lti_storage_target"] == "post_message_forwarding"
    with Browser() as b:
        resp = b.launch(plan)
    assert resp.json()["lti_storage_target"] == "post_message_forwarding"


def test_deep_linking_request_claims(lms: TestPlatform, tool: FakeTool) -> None:
    tool.register(deep_link_url=tool.url + "/launch")
    plan = lms.prepare_launch(
        "tool-1", user_id="t-1", context_id="ctx-1", message_type="LtiDeepLinkingRequest"
    )
    with Browser() as b:
        claims = b.launch(plan).json()["claims"]
    settings = claims[C.DL_SETTINGS]
    assert settings["deep_link_return_url"] == lms.deep_link_return_url
    assert settings["accept_types"] == ["ltiResourceLink"]
    assert settings["accept_multiple"] is True and settings["auto_create"] is True
    assert settings["data"] and C.RESOURCE_LINK not in claims
    assert claims[C.ROLES] == [C.ROLE_INSTRUCTOR]


def test_overrides_and_removals(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    plan = lms.prepare_launch(
        "tool-1",
        user_id="u-1",
        context_id="ctx-1",
        claims_override={"locale": "fr-FR", "exp": 1},
        remove_claims=["email", (C.RESOURCE_LINK, "title")],
    )
    with Browser() as b:
        b.start_login(plan)
        b.follow_auth()
    _, body = _segments(b.id_token or "")
    assert body["locale"] == "fr-FR" and body["exp"] == 1
    assert "email" not in body and "title" not in body[C.RESOURCE_LINK]


def _issue(lms: TestPlatform, tool: FakeTool, tamper: Tamper) -> str:
    plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1", tamper=tamper)
    with Browser() as b:
        b.start_login(plan)
        b.follow_auth()
        assert b.id_token is not None
        return b.id_token


def test_every_bad_payload_is_rejected_by_a_correct_tool(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    jwks = jwt.PyJWKClient(lms.jwks_url)
    for name, tamper in Tamper.bad_payloads().items():
        token = _issue(lms, tool, tamper)
        problems: list[str] = []
        try:
            signing = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                signing.key,
                algorithms=["RS256"],
                audience="tool-1",
                issuer=lms.issuer,
                options={"require": ["exp", "iat", "sub", "nonce"]},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            problems.append(str(exc))
            claims = {}
        if claims:
            if claims.get(C.VERSION) != "1.3.0":
                problems.append("version")
            for claim in (C.MESSAGE_TYPE, C.ROLES, C.DEPLOYMENT_ID):
                if claim not in claims:
                    problems.append(claim)
            if not claims.get(C.RESOURCE_LINK, {}).get("id"):
                problems.append("resource link id")
            if isinstance(claims["aud"], list) and claims.get("azp") != "tool-1":
                problems.append("azp")
            if claims["iat"] < claims["exp"] - 3 * lms.id_token_lifetime:
                problems.append("old iat")
            if claims["nonce"] != lms.auth_requests[-1].params["nonce"]:
                problems.append("nonce")
        assert problems, f"tamper {name!r} produced a token a strict tool would accept"


@pytest.mark.parametrize("learner", [True, False])
def test_valid_variants_are_well_formed(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration, learner: bool
) -> None:
    user = "u-1" if learner else "t-1"
    for name, tamper in Tamper.valid_variants(learner=learner).items():
        plan = lms.prepare_launch("tool-1", user_id=user, context_id="ctx-1", tamper=tamper)
        with Browser() as b:
            resp = b.launch(plan)
        assert resp.status_code == 200, (name, resp.text)
        claims = resp.json()["claims"]
        if name == "empty_roles":
            assert claims[C.ROLES] == []
        if name == "short_role":
            assert claims[C.ROLES] == ["Learner" if learner else "Instructor"]
        if name == "no_pii":
            assert not {"name", "email", "given_name", "family_name"} & set(claims)
        if name == "email_only":
            assert "email" in claims and "name" not in claims
        if name == "names_only":
            assert "name" in claims and "email" not in claims
        if name.endswith("no_context"):
            assert C.CONTEXT not in claims and C.AGS_ENDPOINT not in claims


def test_hs256_and_none_tokens_are_built_as_attacks(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    none_token = _issue(lms, tool, Tamper(alg_none=True))
    assert _segments(none_token)[0]["alg"] == "none" and none_token.endswith(".")
    hs = _issue(lms, tool, Tamper(hs256_public_key=True))
    assert _segments(hs)[0]["alg"] == "HS256"
    # The confusion attack must verify with the public PEM as the HMAC secret.
    import hashlib
    import hmac

    signing_input, sig = hs.rsplit(".", 1)
    mac = hmac.new(lms.keys.current.public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == sig
    assert _issue(lms, tool, Tamper(garbage="junk")) == "junk"
    kidless = _issue(lms, tool, Tamper(no_kid=True))
    assert "kid" not in _segments(kidless)[0]


def test_jwks_rotation(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    first = lms.current_kid
    before = lms.jwks_requests
    kids = [k["kid"] for k in requests.get(lms.jwks_url, timeout=5).json()["keys"]]
    assert kids == [first] and lms.jwks_requests == before + 1
    second = lms.rotate_key()
    assert second != first and lms.current_kid == second
    keys = requests.get(lms.jwks_url, timeout=5).json()["keys"]
    assert [k["kid"] for k in keys] == [first, second]
    assert all(k["alg"] == "RS256" and k["use"] == "sig" and k["kty"] == "RSA" for k in keys)
    plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    with Browser() as b:
        assert b.launch(plan).status_code == 200
    assert _segments(plan.id_token or "")[0]["kid"] == second
    lms.rotate_key(retire_old=True)
    assert len(requests.get(lms.jwks_url, timeout=5).json()["keys"]) == 1


def test_coupled_lineitem_in_claim(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    plan = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1", lineitem=True)
    li = lms.lineitem_by_url(plan.claims[C.AGS_ENDPOINT]["lineitem"])
    assert li is not None and li.resource_link_id == "rl-tool-1-ctx-1" == plan.resource_link_id
    again = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    assert again.claims[C.AGS_ENDPOINT]["lineitem"] == li.url
    lms.add_lineitem("ctx-1", "tool-1", "Second", resource_link_id=plan.resource_link_id)
    third = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    assert "lineitem" not in third.claims[C.AGS_ENDPOINT]


def test_prepare_launch_guards(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    with pytest.raises(ValueError, match="deployment"):
        lms.prepare_launch("tool-1", "dep-unknown", "u-1", "ctx-1")
    with pytest.raises(KeyError):
        lms.prepare_launch("tool-1", user_id="nobody", context_id="ctx-1")
    lms.add_user("u-2")
    with pytest.raises(ValueError, match="not enrolled"):
        lms.prepare_launch("tool-1", user_id="u-2", context_id="ctx-1")
    plan = lms.prepare_launch("tool-1", user_id="u-2", context_id=None)
    assert C.CONTEXT not in plan.claims and plan.claims[C.ROLES] == []


def test_custom_substitution(lms: TestPlatform, tool: FakeTool) -> None:
    tool.register(custom={"uid": "$User.id", "course": "$Context.title", "odd": "$Not.known"})
    plan = lms.prepare_launch(
        "tool-1",
        user_id="u-1",
        context_id="ctx-1",
        locale="es-ES",
        custom={"lang": "$Message.locale"},
    )
    assert plan.claims[C.CUSTOM] == {
        "uid": "u-1",
        "course": "Cycling 101",
        "odd": "$Not.known",
        "lang": "es-ES",
    }
