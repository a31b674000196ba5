"""Random and malformed input to every LTI endpoint: never a 5xx, never a partial write."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lti_tool.identity.models import Instructor, LmsContext, Membership, ResourceLink
from lti_tool.lti.models import Deployment, Registration, UsedNonce

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TABLES = (Instructor, LmsContext, Membership, ResourceLink, Deployment, Registration, UsedNonce)

text = st.text(max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=12,
)


def _b64(obj: Any) -> str:
    raw = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


jwt_like = st.builds(
    lambda h, b, sig: f"{_b64(h)}.{_b64(b)}.{sig}",
    json_values,
    json_values,
    st.text(alphabet="abcdefABCDEF0123456789-_", max_size=40),
)


def snapshot(env: Any) -> dict[str, int]:
    return {t.__name__: env.count(t) for t in TABLES}


@SETTINGS
@given(id_token=st.one_of(text, jwt_like), state=text, target=text)
def test_launch_endpoint_never_fails_on_garbage(env, id_token, state, target):
    before = snapshot(env)
    client = env.app.test_client()
    resp = client.post(
        "/lti/launch", data={"id_token": id_token, "state": state, "lti_storage_target": target}
    )
    assert 400 <= resp.status_code < 500
    assert snapshot(env) == before


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "iss",
                "login_hint",
                "target_link_uri",
                "lti_message_hint",
                "client_id",
                "lti_deployment_id",
                "lti_storage_target",
                "lti1p3_new_window",
            ]
        ),
        text,
        max_size=8,
    ),
    method=st.sampled_from(["GET", "POST"]),
)
def test_login_endpoint_never_fails_on_garbage(env, params, method):
    before = snapshot(env)
    client = env.app.test_client()
    if method == "GET":
        resp = client.get("/lti/login", query_string=params)
    else:
        resp = client.post("/lti/login", data=params)
    assert resp.status_code < 500
    assert snapshot(env) == before


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["iss", "login_hint", "client_id", "lti_message_hint", "lti_storage_target"]
        ),
        text,
        max_size=5,
    )
)
def test_login_for_the_known_issuer_with_random_fields(env, params):
    params = {**params, "iss": env.lms.issuer}
    client = env.app.test_client()
    resp = client.get("/lti/login", query_string=params)
    assert resp.status_code in (200, 302, 400, 403)


@SETTINGS
@given(pending=text, state=text, lt=text)
def test_verify_and_language_never_fail(env, pending, state, lt):
    before = snapshot(env)
    client = env.app.test_client()
    assert (
        client.post("/lti/launch/verify", data={"pending": pending, "state": state}).status_code
        == 400
    )
    resp = client.post("/language", data={"language": state, "next": pending, "lt": lt})
    assert 300 <= resp.status_code < 500
    assert client.get("/course/", query_string={"lt": lt}).status_code in (401,)
    assert snapshot(env) == before


@SETTINGS
@given(
    oc=st.one_of(text, st.builds(lambda p, q: f"http://127.0.0.1:9/{p}?{q}", text, text)),
    token=text,
    ticket=text,
)
def test_registration_endpoints_never_fail(env, oc, token, ticket):
    # Only loopback or non-URLs: the tests send no traffic off this machine.
    before = snapshot(env)
    client = env.app.test_client()
    resp = client.get(
        "/lti/register", query_string={"openid_configuration": oc, "registration_token": token}
    )
    assert resp.status_code == 400
    assert client.post("/lti/register", data={"ticket": ticket}).status_code == 400
    assert snapshot(env) == before


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "sub",
                "https://purl.imsglobal.org/spec/lti/claim/roles",
                "https://purl.imsglobal.org/spec/lti/claim/context",
                "https://purl.imsglobal.org/spec/lti/claim/resource_link",
                "https://purl.imsglobal.org/spec/lti/claim/custom",
                "https://purl.imsglobal.org/spec/lti/claim/launch_presentation",
                "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint",
                "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice",
                "https://purl.imsglobal.org/spec/lti/claim/message_type",
                "https://purl.imsglobal.org/spec/lti/claim/deployment_id",
                "name",
                "email",
                "given_name",
            ]
        ),
        json_values,
        min_size=1,
        max_size=4,
    )
)
def test_signed_launches_with_random_claims_never_fail(env, overrides):
    """Validly signed id_tokens whose claims are random: refused cleanly or accepted whole."""
    before = snapshot(env)
    resp = env.launch("learner-1", claims_override=overrides)
    assert resp.status_code < 500, resp.text[:300]
    if resp.status_code >= 400:
        after = snapshot(env)
        # A refused launch writes nothing but the consumed nonce and an unknown deployment.
        for name in ("Instructor", "LmsContext", "Membership", "ResourceLink", "Registration"):
            assert after[name] == before[name], (name, overrides)


def test_deeply_nested_token_is_a_clean_refusal(env):
    nested = "[" * 100_000 + "]" * 100_000
    token = _b64({"alg": "RS256"}) + "." + _b64(nested.encode()) + ".x"
    resp = env.app.test_client().post("/lti/launch", data={"id_token": token, "state": "s"})
    assert resp.status_code == 400


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b)),  # padded
        st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")),
        st.text(alphabet=_B64URL + "=+/!. \n", max_size=40).map(str.encode),
        st.binary(max_size=40),
    )
)
def test_fast_segment_check_accepts_and_refuses_exactly_what_pyjwt_does(segment):
    """lti_tool.lti.jws replaces PyJWT's per-character loop; the outcome must not change."""
    import jwt
    from jwt.exceptions import DecodeError

    from lti_tool.lti.jws import _FastJWS

    def outcome(decode: Any) -> Any:
        try:
            return decode(segment, "payload")
        except DecodeError as exc:
            return ("refused", str(exc))

    assert outcome(_FastJWS._decode_base64url_segment) == outcome(
        jwt.PyJWS._decode_base64url_segment
    )


def test_the_fast_decoder_is_pyjwt_with_the_fast_check():
    from lti_tool.lti.jws import _FastJWS, decoder

    assert isinstance(decoder._jws, _FastJWS)  # else the override silently stopped applying
