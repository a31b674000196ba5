"""Secrets at rest: the tool's private keys and the platforms' access tokens are sealed with
SECRET_KEY (lti_tool.sealing); a database copy alone does not give them away."""

from __future__ import annotations

import logging

import pytest
from alembic import command
from sqlalchemy import select, text

from lti_tool import create_app, db
from lti_tool.lti import keys
from lti_tool.lti.models import ToolKey
from lti_tool.passback import AccessToken
from lti_tool.passback.jobs import services
from lti_tool.sealing import PREFIX, Unsealable, is_sealed, reseal, seal, unseal
from tests.passback_helpers import award, fast, launch, settle

OLD, NEW = ["old-secret-key-0123456789"], ["new-secret-key-9876543210"]


def test_seal_and_unseal():
    sealed = seal("bearer-token", OLD)
    assert sealed.startswith(PREFIX) and "bearer-token" not in sealed
    assert seal("bearer-token", OLD) != sealed  # a fresh IV each time
    assert unseal(sealed, OLD) == "bearer-token"
    with pytest.raises(Unsealable):
        unseal(sealed, NEW)
    with pytest.raises(Unsealable):
        unseal(PREFIX + "not-a-fernet-token", OLD)
    # SECRET_KEY rotated with the old one kept as a fallback: still readable.
    assert unseal(sealed, NEW + OLD) == "bearer-token"
    # Written before sealing existed.
    assert unseal("plain", OLD) == "plain" and not is_sealed("plain")


def test_reseal_moves_values_to_the_current_key():
    legacy = reseal("plain", NEW + OLD)
    assert legacy is not None and unseal(legacy, NEW) == "plain"
    moved = reseal(seal("x", OLD), NEW + OLD)
    assert moved is not None and unseal(moved, NEW) == "x"
    assert reseal(seal("x", NEW), NEW + OLD) is None  # already current
    assert reseal(seal("x", OLD), NEW) is None  # cannot be opened: left for the operator


def raw(app, sql: str) -> list[str]:  # type: ignore[no-untyped-def]
    with app.app_context(), db.engine().connect() as conn:
        return [r[0] for r in conn.execute(text(sql))]


def test_the_signing_key_is_sealed_in_the_database_and_signs(app):
    with app.app_context(), db.standalone_session() as s:
        key = keys.signing_key(s)
    (stored,) = raw(app, "SELECT private_key_pem FROM lti_tool_key")
    assert is_sealed(stored) and "PRIVATE KEY" not in stored
    assert key.private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    with app.app_context():
        assert unseal(stored) == key.private_pem


def _app_on(app, secret: str, fallbacks: list[str] | None = None):  # type: ignore[no-untyped-def]
    """Another instance on the same database with another SECRET_KEY."""
    cfg = {**app.config, "SECRET_KEY": secret, "SECRET_KEY_FALLBACKS": fallbacks or []}
    return create_app(cfg)


def test_secret_key_rotated_with_a_fallback_keeps_the_signing_key(app):
    with app.app_context(), db.standalone_session() as s:
        kid = keys.signing_key(s).kid
    other = _app_on(app, "rotated-secret-key-000000", [app.config["SECRET_KEY"]])
    try:
        with other.app_context(), db.standalone_session() as s:
            assert keys.signing_key(s).kid == kid
            assert len(keys.list_keys(s)) == 1
    finally:
        other.extensions["lti_tool.engine"].dispose()


def test_rotate_key_reseals_the_old_keys_with_the_new_secret_key(app):
    with app.app_context(), db.standalone_session() as s:
        old = keys.signing_key(s)
    new_secret = "rotated-secret-key-111111"
    other = _app_on(app, new_secret, [app.config["SECRET_KEY"]])
    try:
        with other.app_context(), db.standalone_session() as s:
            keys.rotate(s, publish_delay=0, grace=3600)
            rows = {k.kid: k.private_key_pem for k in keys.list_keys(s)}
    finally:
        other.extensions["lti_tool.engine"].dispose()
    assert len(rows) == 2
    # Without the fallback now: every key opens with the new SECRET_KEY alone.
    assert unseal(rows[old.kid], [new_secret]) == old.private_pem
    assert all(unseal(v, [new_secret]).startswith("-----BEGIN") for v in rows.values())


def test_secret_key_changed_without_fallback_replaces_the_signing_key(app, caplog):
    with app.app_context(), db.standalone_session() as s:
        old = keys.signing_key(s).kid
    other = _app_on(app, "a-different-secret-key-0000")
    try:
        with caplog.at_level(logging.ERROR), other.app_context(), db.standalone_session() as s:
            new = keys.signing_key(s)
            assert new.kid != old
            # Both published: platforms that cached the old kid are not broken meanwhile.
            kids = [k["kid"] for k in keys.jwks(s)["keys"]]
            assert set(kids) == {old, new.kid}
        assert any("cannot be unsealed" in r.getMessage() for r in caplog.records)
    finally:
        other.extensions["lti_tool.engine"].dispose()


def test_access_tokens_are_sealed_and_a_foreign_one_is_fetched_again(env):
    fast(env.app)
    iid, rl = launch(env, "learner-1", lineitem=True)
    award(env, iid, rl, 4)
    settle(env.app)
    assert env.lms.token_requests == 1
    (stored,) = raw(env.app, "SELECT access_token FROM passback_token")
    assert is_sealed(stored) and all(t not in stored for t in env.lms.tokens)
    with env.app.app_context():
        assert unseal(stored) in env.lms.tokens

    # A token sealed under a SECRET_KEY this instance does not have (the database was
    # restored elsewhere, the key changed): not used, a new one is asked for.
    with env.app.app_context(), db.engine().begin() as conn:
        conn.execute(
            text("UPDATE passback_token SET access_token = :v"),
            {"v": seal(unseal_with(env.app, stored), ["someone-elses-secret-key"])},
        )
    services(env.app).tokens._memory.clear()  # as in a freshly started process
    award(env, iid, rl, 6)
    settle(env.app)
    assert env.lms.token_requests == 2
    li = next(iter(env.lms.lineitems.values()))
    assert env.lms.result(li, "learner-1").score_given == 6


def unseal_with(app, stored: str) -> str:  # type: ignore[no-untyped-def]
    with app.app_context():
        return unseal(stored)


def test_migration_0008_seals_what_was_stored_in_plaintext_and_downgrade_opens_it(app):
    with app.app_context(), db.standalone_session() as s:
        pem = keys.signing_key(s).private_pem
    cfg = db.alembic_config(app)
    engine = app.extensions["lti_tool.engine"]
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    assert raw(app, "SELECT private_key_pem FROM lti_tool_key") == [pem]
    with app.app_context(), db.standalone_session() as s:
        # What 0007-era code wrote: plaintext everywhere.
        s.add(AccessToken(registration_id=_registration(app), scopes="s", access_token="tok"))
        s.commit()
    db.upgrade(app)
    stored_key, stored_token = (
        raw(app, "SELECT private_key_pem FROM lti_tool_key")[0],
        raw(app, "SELECT access_token FROM passback_token")[0],
    )
    assert is_sealed(stored_key) and is_sealed(stored_token)
    with app.app_context():
        assert unseal(stored_key) == pem and unseal(stored_token) == "tok"
        keys.reset_cache()
        with db.standalone_session() as s:
            assert keys.signing_key(s).private_pem == pem
            assert s.scalars(select(ToolKey.kid)).all()


def _registration(app) -> int:  # type: ignore[no-untyped-def]
    from lti_tool.lti.models import Registration

    with app.app_context(), db.standalone_session() as s:
        reg = Registration(
            issuer="https://lms.example", client_id="c", auth_login_url="https://lms.example/a",
            auth_token_url="https://lms.example/t", key_set_url="https://lms.example/k",
        )
        s.add(reg)
        s.commit()
        return reg.id
