"""The shared cache: a file cache in the instance folder by default, Redis in production.

Login states, launch data and platform key sets live here; they must be visible to every worker
process, which is why the in-process SimpleCache is never used.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
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


def remove_expired() -> int:
    """Delete expired entries of the file cache (Redis expires keys by itself)."""
    import os
    import struct
    import time

    backend = cache.cache
    directory = getattr(backend, "_path", None)
    if not directory or not hasattr(backend, "_list_dir"):
        return 0
    removed = 0
    now = time.time()
    for name in backend._list_dir():
        try:
            with open(name, "rb") as fh:
                # cachelib's own header: the expiry as a native unsigned int.
                (expires,) = struct.unpack("I", fh.read(4))
            if expires != 0 and expires < now:
                os.remove(name)
                removed += 1
        except (OSError, struct.error):
            continue
    return removed
