"""A minimal but correct LTI 1.3 platform for `bench/launch.py`, served by gunicorn on 127.0.0.1.

It runs in its own processes so that signing id_tokens never competes with the load-generating
clients for one interpreter. It is stateless: the bench client builds each login initiation
itself, and the launch it asks for travels in `login_hint` (the user) and a signed
`lti_message_hint` (client, deployment, user), which this platform verifies. That is what an LMS
does with an opaque hint, without any per-launch memory.

Endpoints (a plain WSGI callable, no framework, so the platform stays cheap):

- `GET|POST /auth`: the OIDC authorization endpoint (LTI Core 1.3 §4.1, Security Framework
  §5.1.1.2). It checks client_id, redirect_uri, scope, response_type, response_mode, prompt,
  nonce, state, login_hint and lti_message_hint, then answers with an auto-submitting form that
  posts a fresh RS256 id_token and the echoed state to the redirect_uri. Errors found after the
  redirect_uri is known are posted back to it (OIDC §3.1.2.6); others are a 400 page.
- `GET /jwks`: the platform's key set (precomputed).
- `POST /token`: present for the registration form only; the bench never calls services.

Configuration, from the environment (set by `bench/launch.py`):

- `BENCH_PLATFORM_ISSUER`: the issuer (`iss`).
- `BENCH_PLATFORM_KEY_FILE`: PEM of the RSA private signing key; parsed once per worker.
- `BENCH_PLATFORM_KID`: its key id.
- `BENCH_PLATFORM_SECRET`: the HMAC secret for `lti_message_hint`.
- `BENCH_PLATFORM_CLIENTS`: JSON `{client_id: {"redirect_uris": [...], "deployment_id": "..."}}`.

Run stand-alone with e.g. `gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:9001
bench.platform:app` from the repository root.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from html import escape
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
ID_TOKEN_LIFETIME = 300
COURSE_ID = "bench-course-1"
LINK_ID = "bench-link-1"


# -- launch hints, shared with the bench client --------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_message_hint(secret: bytes, client_id: str, deployment_id: str, login_hint: str) -> str:
    """The opaque `lti_message_hint` an LMS would put in its login initiation."""
    payload = _b64(json.dumps([client_id, deployment_id, login_hint]).encode())
    mac = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest()[:16])
    return payload + "." + mac


def read_message_hint(secret: bytes, hint: str) -> tuple[str, str, str] | None:
    payload, _, mac = hint.partition(".")
    want = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest()[:16])
    if not mac or not hmac.compare_digest(mac, want):
        return None
    try:
        client_id, deployment_id, login_hint = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        return None
    return str(client_id), str(deployment_id), str(login_hint)


def user_index(login_hint: str) -> int | None:
    """`login_hint` is `u<n>`: the n-th user of the bench's user pool."""
    if not login_hint.startswith("u") or not login_hint[1:].isdigit() or len(login_hint) > 8:
        return None
    return int(login_hint[1:])


# -- the platform ------------------------------------------------------------------------------

Start = Callable[[str, list[tuple[str, str]]], Any]


class Platform:
    def __init__(
        self,
        issuer: str,
        private_key: rsa.RSAPrivateKey,
        kid: str,
        secret: bytes,
        clients: dict[str, dict[str, Any]],
    ) -> None:
        self.issuer = issuer
        self.key = private_key  # parsed once; PyJWT uses a key object as it is
        self.kid = kid
        self.secret = secret
        self.clients = clients
        jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
        jwk.update(kid=kid, alg="RS256", use="sig")
        self.jwks_body = json.dumps({"keys": [jwk]}).encode()
        self.guid = hashlib.sha256(issuer.encode()).hexdigest()[:32]

    @classmethod
    def from_environment(cls) -> Platform:
        with open(os.environ["BENCH_PLATFORM_KEY_FILE"], "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(
            issuer=os.environ["BENCH_PLATFORM_ISSUER"],
            private_key=key,
            kid=os.environ["BENCH_PLATFORM_KID"],
            secret=os.environ["BENCH_PLATFORM_SECRET"].encode(),
            clients=json.loads(os.environ["BENCH_PLATFORM_CLIENTS"]),
        )

    # WSGI entry point
    def __call__(self, environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/auth" and method in ("GET", "POST"):
            return self.auth(environ, start_response)
        if path == "/jwks" and method == "GET":
            return _respond(start_response, "200 OK", "application/json", self.jwks_body,
                            [("Cache-Control", "public, max-age=300")])
        if path == "/token" and method == "POST":
            body = b'{"error": "unsupported_grant_type"}'
            return _respond(start_response, "400 Bad Request", "application/json", body)
        return _respond(start_response, "404 Not Found", "text/plain", b"not found")

    def auth(self, environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(min(size, 65536)).decode("latin-1")
        else:
            raw = environ.get("QUERY_STRING", "")
        params = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

        client_id = params.get("client_id", "")
        client = self.clients.get(client_id)
        if client is None:
            return _error_page(start_response, "unauthorized_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client["redirect_uris"]:
            return _error_page(start_response, "invalid_request", "redirect_uri not registered")
        state = params.get("state", "")

        def fail(code: str, description: str) -> Iterable[bytes]:
            fields = {"error": code, "error_description": description}
            if state:
                fields["state"] = state
            return _form_post(start_response, redirect_uri, fields)

        if "openid" not in params.get("scope", "").split():
            return fail("invalid_scope", "scope must include openid")
        if params.get("response_type") != "id_token":
            return fail("unsupported_response_type", "response_type must be id_token")
        if params.get("response_mode") != "form_post":
            return fail("invalid_request", "response_mode must be form_post")
        if params.get("prompt") != "none":
            return fail("invalid_request", "prompt must be none")
        nonce = params.get("nonce", "")
        if not nonce or len(nonce) > 255:
            return fail("invalid_request", "nonce is required")
        if not state:
            return fail("invalid_request", "state is required")
        login_hint = params.get("login_hint", "")
        n = user_index(login_hint)
        if n is None:
            return fail("login_required", "login_hint is not a user of this platform")
        hint = read_message_hint(self.secret, params.get("lti_message_hint", ""))
        if hint is None:
            return fail("invalid_request", "lti_message_hint missing or forged")
        hint_client, deployment_id, hint_user = hint
        if hint_client != client_id or hint_user != login_hint:
            return fail("invalid_request", "lti_message_hint is for another client or user")
        if deployment_id != client["deployment_id"]:
            return fail("invalid_request", "unknown deployment")

        token = jwt.encode(
            self.claims(client_id, deployment_id, n, nonce, client.get("target_link_uri")),
            self.key,
            algorithm="RS256",
            headers={"kid": self.kid},
        )
        return _form_post(start_response, redirect_uri, {"id_token": token, "state": state})

    def claims(
        self, client_id: str, deployment_id: str, n: int, nonce: str, target: str | None
    ) -> dict[str, Any]:
        now = int(time.time())
        given, family = "Bench", f"User{n:04d}"
        return {
            "iss": self.issuer,
            "aud": client_id,
            "azp": client_id,
            "sub": f"bench-user-{n:04d}",
            "nonce": nonce,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "jti": uuid.uuid4().hex,
            "name": f"{given} {family}",
            "given_name": given,
            "family_name": family,
            "email": f"user{n:04d}@bench.invalid",
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": deployment_id,
            CLAIM + "target_link_uri": target or "",
            CLAIM + "roles": [LEARNER],
            CLAIM + "context": {
                "id": COURSE_ID,
                "label": "SPIN-RECERT",
                "title": "Bench course",
                "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
            },
            CLAIM + "resource_link": {"id": LINK_ID, "title": "Recertification course"},
            CLAIM + "launch_presentation": {
                "document_target": "iframe",
                # One user in five launches in German, so both locales are exercised.
                "locale": "de-DE" if n % 5 == 0 else "en-US",
                "return_url": self.issuer + "/return",
            },
            CLAIM + "tool_platform": {
                "guid": self.guid,
                "name": "Bench platform",
                "product_family_code": "lti-bench",
                "version": "1.0",
            },
        }


def _respond(
    start_response: Start,
    status: str,
    content_type: str,
    body: bytes,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    headers.extend(extra or [])
    start_response(status, headers)
    return [body]


def _error_page(start_response: Start, code: str, description: str) -> list[bytes]:
    body = f"<!doctype html><title>{code}</title><p>{escape(code)}: {escape(description)}</p>"
    return _respond(start_response, "400 Bad Request", "text/html; charset=utf-8", body.encode())


def _form_post(start_response: Start, action: str, fields: dict[str, str]) -> list[bytes]:
    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Launching…</title></head>'
        f'<body><form id="lti" method="post" action="{escape(action)}">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        '<script>document.getElementById("lti").submit();</script></body></html>'
    )
    return _respond(
        start_response,
        "200 OK",
        "text/html; charset=utf-8",
        body.encode(),
        [("Cache-Control", "no-store")],
    )


def _lazy_app() -> Callable[[dict[str, Any], Start], Iterable[bytes]]:
    platform: Platform | None = None

    def app(environ: dict[str, Any], start_response: Start) -> Iterable[bytes]:
        nonlocal platform
        if platform is None:
            platform = Platform.from_environment()
        return platform(environ, start_response)

    return app


# Built on first request so that importing this module (the bench client does, for the hints)
# needs no configuration.
app = _lazy_app()
