"""The platform registry as pylti1p3 sees it: registrations and deployments from the database.

The whole registry is small (one row per LMS install), so it is read in one query and kept in
memory for a few seconds; a launch then costs no registry query. Changes made in this process
(CLI, admin page, dynamic registration) invalidate it at once; other processes see them within
`LTI_REGISTRY_CACHE_TTL` seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pylti1p3.deployment import Deployment as PyltiDeployment
from pylti1p3.registration import Registration as PyltiRegistration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from . import keys
from .models import Deployment, Registration


@dataclass(frozen=True)
class DeploymentView:
    pk: int
    deployment_id: str
    is_active: bool


@dataclass(frozen=True)
class RegistrationView:
    pk: int
    name: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    auth_audience: str | None
    key_set_url: str
    is_active: bool
    deployments: dict[str, DeploymentView]


class ToolRegistration(PyltiRegistration):
    """pylti1p3's registration carrying our key id, so its service calls sign with our `kid`."""

    def __init__(self, kid: str) -> None:
        super().__init__()
        self._kid = kid

    def get_kid(self) -> str:
        return self._kid


def to_registration(view: RegistrationView, s: Session) -> ToolRegistration:
    """The one adapter from our registry into pylti1p3.

    Built once per registration view and signing key: every login and launch asks for it.
    """
    key = keys.signing_key(s)
    cached = _REGISTRATIONS.get(id(view))
    if cached is not None and cached[0] is view and cached[1] == key.kid:
        return cached[2]
    reg = _build_registration(view, key)
    if len(_REGISTRATIONS) >= 1000:
        _REGISTRATIONS.clear()
    _REGISTRATIONS[id(view)] = (view, key.kid, reg)
    return reg


# id(view) -> (view, signing kid, registration); the view is kept to tell a reused id apart.
_REGISTRATIONS: dict[int, tuple[RegistrationView, str, ToolRegistration]] = {}


def _build_registration(view: RegistrationView, key: keys.SigningKey) -> ToolRegistration:
    reg = ToolRegistration(key.kid)
    reg.set_issuer(view.issuer).set_client_id(view.client_id).set_key_set_url(view.key_set_url)
    reg.set_auth_login_url(view.auth_login_url).set_auth_token_url(view.auth_token_url)
    if view.auth_audience:
        reg.set_auth_audience(view.auth_audience)
    reg.set_tool_private_key(key.private_pem)
    return reg


class Registry:
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self._by_pair: dict[tuple[str, str], RegistrationView] = {}
        self._by_issuer: dict[str, list[RegistrationView]] = {}

    def invalidate(self) -> None:
        self._loaded_at = 0.0

    def _load(self, s: Session) -> None:
        rows = s.scalars(select(Registration).options(selectinload(Registration.deployments)))
        by_pair: dict[tuple[str, str], RegistrationView] = {}
        by_issuer: dict[str, list[RegistrationView]] = {}
        for r in rows:
            view = RegistrationView(
                pk=r.id,
                name=r.name,
                issuer=r.issuer,
                client_id=r.client_id,
                auth_login_url=r.auth_login_url,
                auth_token_url=r.auth_token_url,
                auth_audience=r.auth_audience,
                key_set_url=r.key_set_url,
                is_active=r.is_active,
                deployments={
                    d.deployment_id: DeploymentView(d.id, d.deployment_id, d.is_active)
                    for d in r.deployments
                },
            )
            by_pair[(r.issuer, r.client_id)] = view
            by_issuer.setdefault(r.issuer, []).append(view)
        self._by_pair, self._by_issuer = by_pair, by_issuer
        self._loaded_at = time.monotonic()

    def _fresh(self, s: Session) -> None:
        if time.monotonic() - self._loaded_at > self._ttl:
            with self._lock:
                if time.monotonic() - self._loaded_at > self._ttl:
                    self._load(s)

    def find(self, s: Session, issuer: str, client_id: str | None) -> RegistrationView | None:
        self._fresh(s)
        if client_id:
            found = self._by_pair.get((issuer, client_id))
            if found is None and self._loaded_at:
                # A registration added a moment ago by another process.
                with self._lock:
                    self._load(s)
                found = self._by_pair.get((issuer, client_id))
            return found
        candidates = self._by_issuer.get(issuer, [])
        return candidates[0] if len(candidates) == 1 else None

    def by_pk(self, s: Session, pk: int) -> RegistrationView | None:
        self._fresh(s)
        return next((v for v in self._by_pair.values() if v.pk == pk), None)

    def deployment(
        self, s: Session, reg: RegistrationView, deployment_id: str
    ) -> tuple[DeploymentView, bool]:
        """The deployment, creating it inactive when new. Returns (deployment, created)."""
        self._fresh(s)
        current = self._by_pair.get((reg.issuer, reg.client_id), reg)
        known = current.deployments.get(deployment_id)
        if known is not None:
            return known, False
        row = s.scalars(
            select(Deployment).where(
                Deployment.registration_id == reg.pk, Deployment.deployment_id == deployment_id
            )
        ).first()
        created = False
        if row is None:
            row = Deployment(registration_id=reg.pk, deployment_id=deployment_id, is_active=False)
            s.add(row)
            try:
                s.commit()
                created = True
            except IntegrityError:
                # A concurrent launch created it first.
                s.rollback()
                row = s.scalars(
                    select(Deployment).where(
                        Deployment.registration_id == reg.pk,
                        Deployment.deployment_id == deployment_id,
                    )
                ).one()
        self.invalidate()
        return DeploymentView(row.id, row.deployment_id, row.is_active), created


class DbToolConf(ToolConfAbstract):
    """pylti1p3's tool configuration served from the registry instead of a JSON file."""

    def __init__(self, registry: Registry, s: Session) -> None:
        super().__init__()
        self._registry = registry
        self._session = s
        self.issuers_relation_types = _ManyClients()

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Any:
        view = self._registry.find(self._session, iss, None)
        return to_registration(view, self._session) if view else None

    def find_registration_by_params(
        self, iss: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        view = self._registry.find(self._session, iss, client_id)
        return to_registration(view, self._session) if view else None

    def find_deployment(self, iss: str, deployment_id: str) -> PyltiDeployment | None:
        view = self._registry.find(self._session, iss, None)
        return self._deployment(view, deployment_id)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> PyltiDeployment | None:
        view = self._registry.find(self._session, iss, client_id)
        return self._deployment(view, deployment_id)

    @staticmethod
    def _deployment(view: RegistrationView | None, deployment_id: str) -> PyltiDeployment | None:
        if view is None:
            return None
        dep = view.deployments.get(deployment_id)
        if dep is None or not dep.is_active:
            return None
        return PyltiDeployment().set_deployment_id(deployment_id)


class _ManyClients(dict[str, str]):
    """Every issuer may have many client ids (pylti1p3's relation-type switch)."""

    def get(self, key: Any, default: Any = None) -> str:
        return "one-issuer-many-client-ids"
