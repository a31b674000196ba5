"""A deliberately small LTI tool, written only to exercise the TestPlatform."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from flask import Flask, Response, jsonify, redirect, request
from pylti1p3.cookies_allowed_check import CookiesAllowedCheckPage
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.lms import TestPlatform
from tests.lms import claims as C
from tests.lms.keys import KeyPair
from tests.lms.model import LaunchPlan, ToolRegistration


class _Quiet(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


_TOOL_KEY: list[KeyPair] = []


def _tool_key() -> KeyPair:
    """One RSA key per process for fake tools (fresh kid each time); generation is slow."""
    if not _TOOL_KEY:
        _TOOL_KEY.append(KeyPair.generate())
    return KeyPair(kid=uuid.uuid4().hex[:12], private_key=_TOOL_KEY[0].private_key)


class FakeTool:
    def __init__(
        self,
        lms: TestPlatform,
        client_id: str = "tool-1",
        *,
        cookie_attrs: str = "SameSite=None; Secure",
        host: str = "127.0.0.1",
    ) -> None:
        self.lms = lms
        self.host = host
        self.cookie_check = False
        self.verify: bool | str = True
        self.client_id = client_id
        self.cookie_attrs = cookie_attrs
        self.key = _tool_key()
        self.extra_keys: list[KeyPair] = []
        self.auth_overrides: dict[str, str | None] = {}
        self.pending: dict[str, str] = {}
        self.jwks_hits = 0
        self.app = self._app()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -------------------------------------------------------------- server
    def __enter__(self) -> FakeTool:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet)
        self.url = f"http://{self.host}:{self._server.server_port}"
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def register(self, **kw: Any) -> ToolRegistration:
        args: dict[str, Any] = {
            "client_id": self.client_id,
            "login_url": self.url + "/login",
            "redirect_uris": [self.url + "/launch"],
            "jwks_url": self.url + "/jwks",
            "target_link_uri": self.url + "/launch",
            "deployment_ids": ["dep-1"],
            "scopes": list(C.ALL_SCOPES),
        }
        args.update(kw)
        return self.lms.register_tool(**args)

    def _app(self) -> Flask:
        app = Flask("fake_tool")

        @app.get("/jwks")
        def jwks() -> Response:
            self.jwks_hits += 1
            return jsonify({"keys": [k.public_jwk() for k in [self.key, *self.extra_keys]]})

        @app.route("/login", methods=["GET", "POST"])
        def login() -> Any:
            params = request.values
            if params.get("iss") != self.lms.issuer:
                return Response("unknown issuer", status=400)
            if self.cookie_check and not params.get("lti1p3_new_window"):
                page = CookiesAllowedCheckPage(
                    {k: params[k] for k in params if k != "lti1p3_new_window"}
                    | {"lti1p3_new_window": "1"},
                    "http",
                    "Cookies are blocked",
                    "Open in a new window",
                    "Loading…",
                )
                return Response(page.get_html(), mimetype="text/html")
            state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
            self.pending[state] = nonce
            query: dict[str, str | None] = {
                "scope": "openid",
                "response_type": "id_token",
                "response_mode": "form_post",
                "prompt": "none",
                "client_id": params.get("client_id"),
                "redirect_uri": self.url + "/launch",
                "login_hint": params.get("login_hint"),
                "lti_message_hint": params.get("lti_message_hint"),
                "nonce": nonce,
                "state": state,
            }
            query.update(self.auth_overrides)
            clean = {k: v for k, v in query.items() if v is not None}
            resp = redirect(self.lms.auth_url + "?" + urlencode(clean))
            resp.headers.add(
                "Set-Cookie", f"tool_state={state}; Path=/; HttpOnly; {self.cookie_attrs}"
            )
            return resp

        @app.post("/launch")
        def launch() -> Any:
            state = request.form.get("state", "")
            if request.cookies.get("tool_state") != state:
                return jsonify({"error": "state cookie missing or different"}), 400
            try:
                claims = self.decode_launch(request.form.get("id_token", ""))
            except (jwt.PyJWTError, KeyError) as exc:
                return jsonify({"error": f"bad id_token: {exc}"}), 400
            if claims.get("nonce") != self.pending.pop(state, None):
                return jsonify({"error": "nonce mismatch"}), 400
            return jsonify(
                {
                    "ok": True,
                    "claims": claims,
                    "lti_storage_target": request.form.get("lti_storage_target"),
                }
            )

        return app

    # -------------------------------------------------------------- helpers
    def decode_launch(self, id_token: str) -> dict[str, Any]:
        kid = str(jwt.get_unverified_header(id_token).get("kid"))
        jwks = requests.get(self.lms.jwks_url, verify=self.verify, timeout=5).json()
        key = jwt.PyJWKSet.from_dict(jwks)[kid]
        return jwt.decode(
            id_token, key.key, algorithms=["RS256"], audience=self.client_id, issuer=self.lms.issuer
        )

    def client_assertion(
        self, *, key: KeyPair | None = None, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.lms.expected_token_audience(self.client_id),
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        key = key or self.key
        hdrs = {"kid": key.kid} if headers is None else headers
        return jwt.encode(body, key.private_key, algorithm="RS256", headers=hdrs)

    def token_request(
        self, scopes: list[str] | str, assertion: str | None = None, **form: str
    ) -> requests.Response:
        scope = scopes if isinstance(scopes, str) else " ".join(scopes)
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": C.CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion or self.client_assertion(),
            "scope": scope,
        }
        data.update(form)
        return requests.post(self.lms.token_url, data=data, timeout=10)

    def token(self, scopes: list[str] | tuple[str, ...] = C.ALL_SCOPES) -> str:
        resp = self.token_request(list(scopes))
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    def dl_response(
        self,
        plan: LaunchPlan,
        items: list[dict[str, Any]],
        *,
        key: KeyPair | None = None,
        **overrides: Any,
    ) -> str:
        settings = (plan.issued_claims or plan.claims)[C.DL_SETTINGS]
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.client_id,
            "aud": self.lms.issuer,
            "iat": now,
            "exp": now + 600,
            "nonce": uuid.uuid4().hex,
            C.MESSAGE_TYPE: C.DEEP_LINKING_RESPONSE,
            C.VERSION: C.LTI_VERSION,
            C.DEPLOYMENT_ID: plan.deployment_id,
            C.DL_CONTENT_ITEMS: items,
        }
        if "data" in settings:
            body[C.DL_DATA] = settings["data"]
        body.update(overrides)
        body = {k: v for k, v in body.items() if v is not None}
        key = key or self.key
        return jwt.encode(body, key.private_key, algorithm="RS256", headers={"kid": key.kid})
