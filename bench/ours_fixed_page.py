"""Our tool with the course page replaced by a fixed 50-byte page (`bench/launch.py
--with-fixed-page`).

Not a configuration of the product: an experiment that measures the floor of our launch (login,
validation, the nonce and identity writes, the session) without the page the launch renders, to
see how much of the gap to the minimal tool the page accounts for. The product's code is
unchanged; only the launch's landing hook (`lti_tool.lti.set_landing`) is swapped.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from lti_tool import create_app as create_tool
from lti_tool.lti import set_landing

PAGE = "<!doctype html><title>Launched</title><p>Launched</p>"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = create_tool(config)
    set_landing(app, lambda _identity: PAGE)
    return app
