"""Configuration from environment variables, with embedded defaults that need no server.

A fresh clone runs on SQLite in the instance folder and a file cache beside it; setting
``DATABASE_URL`` (PostgreSQL via psycopg 3) and ``REDIS_URL`` switches to the production parts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

_TRUE = {"1", "true", "yes", "on"}


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in _TRUE


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or not raw.strip() else int(raw)


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the operator gave."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_secret_key(instance_path: str) -> str:
    """Read the secret key from the instance folder, creating it on first run.

    Kept out of the repository and out of the environment by default so that a fresh install
    is secure without any set-up step.
    """
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two workers starting together must agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def from_environment(instance_path: str) -> dict[str, Any]:
    db_url = os.environ.get("DATABASE_URL") or "sqlite:///" + str(
        Path(instance_path) / "lti_tool.sqlite3"
    )
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("CACHE_REDIS_URL")
    cfg: dict[str, Any] = {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        # Earlier keys, comma-separated: sessions signed and secrets sealed with them stay valid.
        "SECRET_KEY_FALLBACKS": [
            k.strip() for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip()
        ],
        "DATABASE_URL": normalise_database_url(db_url),
        # Schema upgrades on start keep `flask run` on a fresh clone one command away.
        "AUTO_MIGRATE": _bool("AUTO_MIGRATE", True),
        "PUBLIC_BASE_URL": (os.environ.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
        "TRUSTED_PROXY_HOPS": _int("TRUSTED_PROXY_HOPS", 0),
        "TOOL_TITLE": os.environ.get("TOOL_TITLE", "Spinning® Instructor Online Recertification"),
        # Loopback platforms over plain http are for local trials and tests only.
        "LTI_ALLOW_INSECURE_LOOPBACK": _bool("LTI_ALLOW_INSECURE_LOOPBACK", True),
        "LTI_HTTP_TIMEOUT": float(os.environ.get("LTI_HTTP_TIMEOUT", "10")),
        "LTI_ID_TOKEN_MAX_AGE": _int("LTI_ID_TOKEN_MAX_AGE", 600),
        "LTI_CLOCK_SKEW": _int("LTI_CLOCK_SKEW", 60),
        "LTI_LOGIN_STATE_TTL": _int("LTI_LOGIN_STATE_TTL", 600),
        "LTI_JWKS_CACHE_TTL": _int("LTI_JWKS_CACHE_TTL", 3600),
        "LTI_JWKS_REFETCH_MIN_INTERVAL": _int("LTI_JWKS_REFETCH_MIN_INTERVAL", 10),
        "LTI_REGISTRY_CACHE_TTL": _int("LTI_REGISTRY_CACHE_TTL", 15),
        "LTI_KEY_PUBLISH_DELAY": _int("LTI_KEY_PUBLISH_DELAY", 600),
        "LTI_KEY_GRACE_PERIOD": _int("LTI_KEY_GRACE_PERIOD", 7 * 24 * 3600),
        "LTI_INVITE_TTL": _int("LTI_INVITE_TTL", 7 * 24 * 3600),
        "SESSION_MAX_AGE": _int("SESSION_MAX_AGE", 12 * 3600),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # Freeze what start-up allocated (the course, catalogs, ...) out of the garbage
        # collector's reach: otherwise every full collection walks it all (bench/launch).
        # Off for apps built by tests, which create many apps in one process.
        "GC_FREEZE": os.environ.get("GC_FREEZE", "1") not in ("0", "false", "no"),
        # Where the course lives; by default the checkout's course_content/.
        **({"COURSE_CONTENT_DIR": os.environ["COURSE_CONTENT_DIR"]}
           if os.environ.get("COURSE_CONTENT_DIR") else {}),
        "CACHE_DEFAULT_TIMEOUT": 3600,
        # LTI messages and forms are small; anything larger is refused with a 413.
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        # Grade passback (lti_tool.passback): "thread" sends right after commit in the
        # background, "inline" in the committing thread, "off" leaves it to the worker.
        "PASSBACK_DELIVERY": os.environ.get("PASSBACK_DELIVERY", "thread"),
        "PASSBACK_SENDER_THREADS": _int("PASSBACK_SENDER_THREADS", 4),
        "PASSBACK_WORKER_THREADS": _int("PASSBACK_WORKER_THREADS", 8),
        "PASSBACK_POLL_INTERVAL": float(os.environ.get("PASSBACK_POLL_INTERVAL", "2")),
        "PASSBACK_RETRY_BASE": float(os.environ.get("PASSBACK_RETRY_BASE", "30")),
        "PASSBACK_RETRY_MAX": float(os.environ.get("PASSBACK_RETRY_MAX", "3600")),
        "PASSBACK_GIVE_UP_AFTER": float(os.environ.get("PASSBACK_GIVE_UP_AFTER", str(14 * 86400))),
        # 0 = four times LTI_HTTP_TIMEOUT, at least 30 s.
        "PASSBACK_LEASE_SECONDS": float(os.environ.get("PASSBACK_LEASE_SECONDS", "0")),
        "PASSBACK_TOKEN_MARGIN": float(os.environ.get("PASSBACK_TOKEN_MARGIN", "60")),
    }
    if redis_url:
        cfg.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=redis_url)
    else:
        cfg.update(
            CACHE_TYPE="FileSystemCache",
            CACHE_DIR=os.environ.get("CACHE_DIR") or str(Path(instance_path) / "cache"),
            # No threshold: cachelib then keeps no file count, which costs two extra file
            # writes per set, and never prunes live login states early. Expired entries are
            # removed by `flask lti prune`.
            CACHE_THRESHOLD=0,
        )
    return cfg
