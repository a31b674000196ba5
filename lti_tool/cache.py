"""The shared cache: a file cache in the instance folder by default, Redis in production.

Login states, launch data and platform key sets live here; they must be visible to every worker
process, which is why the in-process SimpleCache is never used.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from flask_caching import Cache

cache = Cache()


def init_app(app: Flask) -> None:
    cache.init_app(app)


def get(key: str) -> Any:
    return cache.get(key)


def set(key: str, value: Any, timeout: int) -> None:
    cache.set(key, value, timeout=timeout)


def delete(key: str) -> None:
    cache.delete(key)


def backend_name() -> str:
    return str(current_app.config.get("CACHE_TYPE"))
