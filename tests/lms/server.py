"""TestPlatform: a strict LTI 1.3 / LTI Advantage platform running in a background thread."""

from __future__ import annotations

import secrets
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import ags, deep_linking, nrps, oauth, oidc, registration, storage_page
from . import claims as C
from .faults import FaultQueue
from .keys import PlatformKeys, ToolKeyCache
from .model import (
    AuthRequest,
    ClaimPath,
    Context,
    DeepLinkResponseRecord,
    Enrolment,
    LaunchPlan,
    LineItem,
    RegistrationRecord,
    ResourceLink,
    Result,
    ScoreRecord,
    TokenRecord,
    ToolRegistration,
    User,
)
from .tamper import Tamper


class _QuietHandler(WSGIRequestHandler):
    """Keeps pytest output readable; failures surface through the recorded lists instead."""

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class TestPlatform:
    """A strict LMS for tests. Use as a context manager; see tests/lms/README.md."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        public_host: str = "127.0.0.1",
        token_audience: str | None = None,
        id_token_lifetime: int = 300,
        token_lifetime: int = 3600,
        http_verify: bool | str = True,
        name: str = "Strict Test LMS",
    ) -> None:
        self.ssl_context = ssl_context
        self.public_host = public_host
        self.name = name
        self.id_token_lifetime = id_token_lifetime
        self.token_lifetime = token_lifetime
        self._token_audience = token_audience
        self.guid = "strict-test-lms-" + secrets.token_hex(4)

        self.lock = threading.RLock()
        self.keys = PlatformKeys()
        self.tool_keys = ToolKeyCache(verify=http_verify)
        self.faults = FaultQueue()

        # Strictness switches (all on by default).
        self.require_prompt_none = True
        self.dl_require_title = True
        self.score_status = 200
        self.nrps_page_size = 100
        self.lineitems_page_size = 100
        self.results_page_size = 100
        self.assertion_max_lifetime = 600
        self.clock_skew = 5
        self.registration_token_lifetime = 600

        self.tools: dict[str, ToolRegistration] = {}
        self.contexts: dict[str, Context] = {}
        self.users: dict[str, User] = {}
        self.enrolments: dict[tuple[str, str], Enrolment] = {}
        self.resource_links: dict[str, ResourceLink] = {}
        self.lineitems: dict[int, LineItem] = {}
        self.plans: dict[str, LaunchPlan] = {}

        self.auth_requests: list[AuthRequest] = []
        self.jwks_requests = 0
        self.token_requests = 0
        self.token_errors: list[str] = []
        self.tokens: dict[str, TokenRecord] = {}
        self.seen_jtis: set[tuple[str, str]] = set()
        self.score_requests = 0
        self.scores: list[ScoreRecord] = []
        self.stale_scores: list[ScoreRecord] = []
        self.duplicate_timestamps: list[ScoreRecord] = []
        self.rejected_scores: list[tuple[Any, str]] = []
        self.results: dict[tuple[int, str], Result] = {}
        self.service_requests: list[tuple[str, str, str, int]] = []
        self.deep_link_responses: list[DeepLinkResponseRecord] = []
        self.deep_link_errors: list[str] = []
        self.dl_nonces: set[tuple[str, str]] = set()
        self.registrations: list[RegistrationRecord] = []
        self.registration_tokens: dict[str, float] = {}
        self.registration_closed: list[dict[str, Any]] = []
        self.storage_messages: list[dict[str, Any]] = []
        self.returns: list[dict[str, str]] = []

        self._next_lineitem = 1
        self._next_type_id = 1
        self._next_dyn = 1
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = self._create_app()

    # ------------------------------------------------------------------ lifecycle
    def _create_app(self) -> Flask:
        app = Flask("strict_test_lms")
        for module in (oidc, oauth, ags, nrps, deep_linking, registration, storage_page):
            module.register(app, self)
        return app

    def start(self) -> TestPlatform:
        if self._server is not None:
            return self
        self._server = make_server(
            "127.0.0.1",
            0,
            self.app,
            threaded=True,
            ssl_context=self.ssl_context,
            request_handler=_QuietHandler,
        )
        self.port = self._server.server_port
        server = self._server
        # A short poll interval keeps shutdown (once per test) fast.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="test-lms", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TestPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ URLs
    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("TestPlatform is not started; use `with TestPlatform() as lms:`")
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.public_host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def auth_url(self) -> str:
        return self.url + "/oidc/auth"

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    @property
    def jwks_url(self) -> str:
        return self.url + "/.well-known/jwks.json"

    @property
    def openid_config_url(self) -> str:
        return self.url + "/.well-known/openid-configuration"

    @property
    def registration_url(self) -> str:
        return self.url + "/api/registration"

    @property
    def deep_link_return_url(self) -> str:
        return self.url + "/deep_link/return"

    @property
    def token_audience(self) -> str | None:
        return self._token_audience

    @token_audience.setter
    def token_audience(self, value: str | None) -> None:
        self._token_audience = value

    def expected_token_audience(self, client_id: str) -> str:
        reg = self.tools.get(client_id)
        return (reg.token_audience if reg else None) or self._token_audience or self.token_url

    def lineitems_url(self, context_id: str, client_id: str) -> str:
        tid = self.tools[client_id].type_id
        return f"{self.url}/api/ags/{quote(context_id, safe='')}/lineitems?type_id={tid}"

    def memberships_url(self, context_id: str) -> str:
        return f"{self.url}/api/nrps/{quote(context_id, safe='')}/memberships"

    def course_url(self, plan: LaunchPlan | str, method: str = "GET") -> str:
        plan_id = plan if isinstance(plan, str) else plan.plan_id
        suffix = "?method=post" if method.upper() == "POST" else ""
        return f"{self.url}/course/{plan_id}{suffix}"

    def registration_page_url(self, tool_registration_url: str) -> str:
        """An admin page that opens the tool's registration URL in an iframe (DR §3.3)."""
        return f"{self.url}/admin/register?tool={quote(tool_registration_url, safe='')}"

    # ------------------------------------------------------------------ setup API
    def register_tool(
        self,
        client_id: str,
        login_url: str,
        redirect_uris: Sequence[str],
        jwks_url: str | None = None,
        target_link_uri: str | None = None,
        deployment_ids: Sequence[str] = ("dep-1",),
        scopes: Sequence[str] = C.ALL_SCOPES,
        token_audience: str | None = None,
        *,
        jwks: Mapping[str, Any] | None = None,
        deep_link_url: str | None = None,
        name: str = "Tool",
        custom: Mapping[str, str] | None = None,
        source: str = "manual",
    ) -> ToolRegistration:
        if jwks_url is None and jwks is None:
            raise ValueError("register_tool needs jwks_url (or a static jwks)")
        if not redirect_uris:
            raise ValueError("register_tool needs at least one redirect_uri")
        unknown = [s for s in scopes if s not in C.ALL_SCOPES]
        if unknown:
            raise ValueError(f"unsupported scopes {unknown}")
        with self.lock:
            if client_id in self.tools:
                raise ValueError(f"client_id {client_id!r} is already registered")
            reg = ToolRegistration(
                client_id=client_id,
                login_url=login_url,
                redirect_uris=list(redirect_uris),
                target_link_uri=target_link_uri or redirect_uris[0],
                jwks_url=jwks_url,
                jwks=dict(jwks) if jwks is not None else None,
                deployment_ids=list(deployment_ids),
                scopes=list(scopes),
                token_audience=token_audience,
                deep_link_url=deep_link_url,
                name=name,
                custom=dict(custom or {}),
                type_id=self._next_type_id,
                source=source,
            )
            self._next_type_id += 1
            self.tools[client_id] = reg
        return reg

    def add_deployment(self, client_id: str, deployment_id: str) -> None:
        with self.lock:
            self.tools[client_id].deployment_ids.append(deployment_id)

    def add_context(
        self,
        context_id: str,
        title: str = "Course",
        label: str = "COURSE",
        type: Sequence[str] = (C.CONTEXT_TYPE_COURSE_OFFERING,),
    ) -> Context:
        with self.lock:
            ctx = Context(id=context_id, title=title, label=label, type=list(type))
            self.contexts[context_id] = ctx
        return ctx

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
        email: str | None = None,
        locale: str | None = None,
        picture: str | None = None,
    ) -> User:
        with self.lock:
            user = User(user_id, name, given_name, family_name, email, locale, picture)
            self.users[user_id] = user
        return user

    def enrol(
        self,
        context_id: str,
        user_id: str,
        roles: Sequence[str] = (C.ROLE_LEARNER,),
        status: str = "Active",
    ) -> Enrolment:
        if context_id not in self.contexts:
            raise KeyError(f"unknown context {context_id!r}; call add_context first")
        if user_id not in self.users:
            raise KeyError(f"unknown user {user_id!r}; call add_user first")
        with self.lock:
            enrolment = Enrolment(context_id, user_id, list(roles), status)
            self.enrolments[(context_id, user_id)] = enrolment
        return enrolment

    def add_resource_link(
        self,
        resource_link_id: str,
        context_id: str | None,
        client_id: str,
        title: str | None = None,
        url: str | None = None,
        custom: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> ResourceLink:
        with self.lock:
            existing = self.resource_links.get(resource_link_id)
            if existing is not None:
                if existing.client_id != client_id or existing.context_id != context_id:
                    raise ValueError(
                        f"resource link {resource_link_id!r} belongs to another tool/context"
                    )
                return existing
            link = ResourceLink(
                resource_link_id,
                context_id,
                client_id,
                title or f"Activity {resource_link_id}",
                description,
                url,
                dict(custom or {}),
            )
            self.resource_links[resource_link_id] = link
            if context_id is not None:
                self.contexts[context_id].tools.add(client_id)
        return link

    def add_lineitem(
        self,
        context_id: str,
        client_id: str,
        label: str,
        score_maximum: float = 100,
        resource_link_id: str | None = None,
        tag: str | None = None,
        resource_id: str | None = None,
    ) -> LineItem:
        """A line item created by the platform (e.g. an instructor made a graded assignment)."""
        with self.lock:
            return self._new_lineitem(
                context_id,
                client_id,
                {
                    "label": label,
                    "scoreMaximum": score_maximum,
                    "resourceLinkId": resource_link_id,
                    "tag": tag,
                    "resourceId": resource_id,
                },
            )

    def _new_lineitem(self, context_id: str, client_id: str, body: Mapping[str, Any]) -> LineItem:
        li_id = self._next_lineitem
        self._next_lineitem += 1
        tid = self.tools[client_id].type_id
        ctx_path = quote(context_id, safe="")
        url = f"{self.url}/api/ags/{ctx_path}/lineitems/{li_id}/lineitem?type_id={tid}"
        known = {
            "id",
            "label",
            "scoreMaximum",
            "resourceLinkId",
            "resourceId",
            "tag",
            "startDateTime",
            "endDateTime",
            "gradesReleased",
        }
        li = LineItem(
            id=li_id,
            context_id=context_id,
            client_id=client_id,
            label=body["label"],
            score_maximum=body["scoreMaximum"],
            url=url,
            resource_link_id=body.get("resourceLinkId"),
            resource_id=body.get("resourceId"),
            tag=body.get("tag"),
            start_date_time=body.get("startDateTime"),
            end_date_time=body.get("endDateTime"),
            grades_released=body.get("gradesReleased"),
            extra={k: v for k, v in body.items() if k not in known},
        )
        self.lineitems[li_id] = li
        self.contexts[context_id].tools.add(client_id)
        return li

    def prepare_launch(
        self,
        client_id: str,
        deployment_id: str | None = None,
        user_id: str | None = None,
        context_id: str | None = None,
        message_type: str = C.RESOURCE_LINK_REQUEST,
        resource_link_id: str | None = None,
        roles: Sequence[str] | None = None,
        locale: str | None = None,
        custom: Mapping[str, str] | None = None,
        ags: bool = True,
        nrps: bool = True,
        lineitem: LineItem | str | bool | None = None,
        lti_storage_target: str | None = None,
        claims_override: Mapping[str, Any] | None = None,
        remove_claims: Sequence[ClaimPath] = (),
        tamper: Tamper | None = None,
        *,
        target_link_uri: str | None = None,
        resource_link_title: str | None = None,
        deep_linking_settings: Mapping[str, Any] | None = None,
        login_url: str | None = None,
    ) -> LaunchPlan:
        """Prepare a launch like a user clicking a link; see README for every option."""
        return oidc.prepare_launch(
            self,
            client_id=client_id,
            deployment_id=deployment_id,
            user_id=user_id,
            context_id=context_id,
            message_type=message_type,
            resource_link_id=resource_link_id,
            roles=roles,
            locale=locale,
            custom=custom,
            ags=ags,
            nrps=nrps,
            lineitem=lineitem,
            lti_storage_target=lti_storage_target,
            claims_override=claims_override,
            remove_claims=remove_claims,
            tamper=tamper,
            target_link_uri=target_link_uri,
            resource_link_title=resource_link_title,
            deep_linking_settings=deep_linking_settings,
            login_url=login_url,
        )

    # ------------------------------------------------------------------ keys & tokens
    def rotate_key(self, retire_old: bool = False) -> str:
        """Publish and sign with a new key; old keys stay published unless retire_old."""
        return self.keys.rotate(retire_old=retire_old).kid

    @property
    def current_kid(self) -> str:
        return self.keys.current.kid

    def expire_tokens(self) -> None:
        with self.lock:
            for record in self.tokens.values():
                record.revoked = True

    def new_secret(self, prefix: str) -> str:
        return f"{prefix}-{secrets.token_urlsafe(18)}"

    # ------------------------------------------------------------------ grade book
    def lineitem_by_url(self, url: str | LineItem | int) -> LineItem | None:
        if isinstance(url, LineItem):
            return url
        if isinstance(url, int):
            return self.lineitems.get(url)
        path = urlsplit(url).path
        for li in self.lineitems.values():
            if urlsplit(li.url).path == path:
                return li
        return None

    def result(self, lineitem: str | LineItem | int, user_id: str) -> Result | None:
        li = self.lineitem_by_url(lineitem)
        if li is None:
            raise KeyError(f"unknown line item {lineitem!r}")
        return self.results.get((li.id, user_id))

    # ------------------------------------------------------------------ dynamic registration
    def start_registration(self, ttl: int | None = None) -> tuple[str, str]:
        """(openid_configuration URL, registration_token) for the tool's registration URL."""
        token = self.new_secret("regtok")
        with self.lock:
            self.registration_tokens[token] = time.time() + (
                ttl or self.registration_token_lifetime
            )
        return self.openid_config_url, token

    def is_gradable(self, context_id: str, user_id: str) -> bool:
        enrolment = self.enrolments.get((context_id, user_id))
        return bool(
            enrolment
            and enrolment.status == "Active"
            and any(C.is_learner_role(r) for r in enrolment.roles)
        )
