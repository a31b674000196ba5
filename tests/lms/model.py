"""In-memory records of the test platform: registrations, people, courses, launches, grades."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .tamper import Tamper

JsonDict = dict[str, Any]
ClaimPath = str | tuple[str, ...]


@dataclass
class ToolRegistration:
    """What an admin enters in the LMS for one tool (one client_id)."""

    client_id: str
    login_url: str
    redirect_uris: list[str]
    target_link_uri: str
    jwks_url: str | None = None
    jwks: JsonDict | None = None
    deployment_ids: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    token_audience: str | None = None
    deep_link_url: str | None = None
    name: str = "Tool"
    custom: dict[str, str] = field(default_factory=dict)
    # Moodle-style numeric tool id carried as ?type_id= in service URLs.
    type_id: int = 0
    source: str = "manual"


@dataclass
class Context:
    id: str
    title: str
    label: str
    type: list[str] = field(default_factory=list)
    tools: set[str] = field(default_factory=set)


@dataclass
class User:
    id: str
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    locale: str | None = None
    picture: str | None = None
    sourcedid: str | None = None


@dataclass
class Enrolment:
    context_id: str
    user_id: str
    roles: list[str]
    status: str = "Active"


@dataclass
class ResourceLink:
    id: str
    context_id: str | None
    client_id: str
    title: str
    description: str | None = None
    url: str | None = None
    custom: dict[str, str] = field(default_factory=dict)


@dataclass
class LineItem:
    id: int
    context_id: str
    client_id: str
    label: str
    score_maximum: float
    url: str
    resource_link_id: str | None = None
    resource_id: str | None = None
    tag: str | None = None
    start_date_time: str | None = None
    end_date_time: str | None = None
    grades_released: bool | None = None
    extra: JsonDict = field(default_factory=dict)

    def to_json(self) -> JsonDict:
        body: JsonDict = dict(self.extra)
        body.update({"id": self.url, "label": self.label, "scoreMaximum": self.score_maximum})
        optional = {
            "resourceLinkId": self.resource_link_id,
            "resourceId": self.resource_id,
            "tag": self.tag,
            "startDateTime": self.start_date_time,
            "endDateTime": self.end_date_time,
            "gradesReleased": self.grades_released,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body


@dataclass
class ScoreRecord:
    """One score POST that passed validation (applied, stale or duplicate)."""

    lineitem_id: int
    lineitem_url: str
    user_id: str
    body: JsonDict
    timestamp: str
    client_id: str
    received_at: float = field(default_factory=time.time)


@dataclass
class Result:
    """The current grade of one user for one line item, as the gradebook shows it."""

    lineitem_id: int
    lineitem_url: str
    user_id: str
    score_given: float | None
    score_maximum: float | None
    result_score: float | None
    result_maximum: float
    activity_progress: str
    grading_progress: str
    comment: str | None
    timestamp: str
    score: JsonDict


@dataclass
class LaunchPlan:
    """A launch the platform has prepared; consumed when the tool completes the OIDC auth."""

    plan_id: str
    client_id: str
    deployment_id: str
    user_id: str
    context_id: str | None
    message_type: str
    login_hint: str
    lti_message_hint: str
    target_link_uri: str
    issuer: str
    auth_url: str
    login_url: str
    claims: JsonDict
    claims_override: JsonDict = field(default_factory=dict)
    remove_claims: list[ClaimPath] = field(default_factory=list)
    tamper: Tamper | None = None
    lti_storage_target: str | None = None
    resource_link_id: str | None = None
    used: bool = False
    answered: bool = False
    nonce: str | None = None
    state: str | None = None
    id_token: str | None = None
    issued_claims: JsonDict | None = None

    @property
    def login_params(self) -> dict[str, str]:
        params = {
            "iss": self.issuer,
            "login_hint": self.login_hint,
            "target_link_uri": self.target_link_uri,
            "lti_message_hint": self.lti_message_hint,
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }
        if self.lti_storage_target:
            params["lti_storage_target"] = self.lti_storage_target
        return params


@dataclass
class AuthRequest:
    """Every call to the OIDC auth endpoint, valid or not."""

    method: str
    params: dict[str, str]
    ok: bool
    error: str | None = None
    plan_id: str | None = None
    at: float = field(default_factory=time.time)


@dataclass
class TokenRecord:
    token: str
    client_id: str
    scopes: list[str]
    expires_at: float
    revoked: bool = False

    def valid(self, now: float | None = None) -> bool:
        return not self.revoked and (now or time.time()) < self.expires_at


@dataclass
class DeepLinkResponseRecord:
    plan_id: str
    client_id: str
    claims: JsonDict
    content_items: list[JsonDict]
    created_links: list[ResourceLink] = field(default_factory=list)
    created_lineitems: list[LineItem] = field(default_factory=list)
    msg: str | None = None
    errormsg: str | None = None


@dataclass
class RegistrationRecord:
    """A dynamic registration POST (accepted or rejected)."""

    request: JsonDict | None
    ok: bool
    error: str | None = None
    response: JsonDict | None = None
    client_id: str | None = None
    deployment_id: str | None = None
