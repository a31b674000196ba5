"""Deep Linking 2.0 (https://www.imsglobal.org/spec/lti-dl/v2p0): placing the course or single
modules in an LMS course, each with a graded column (lineItem) for its SPIN® CECs.

Public surface: `init_app(app)` (the `deeplink` blueprint: `deeplink.picker` at /deep-link/,
where an LtiDeepLinkingRequest launch lands), `items.build(...)` (the content items) and
`items.Response` (the signed LtiDeepLinkingResponse). A placed module carries the custom
parameter `module=<module id>`, which opens that module directly when launched.
"""

from __future__ import annotations

from flask import Flask

from . import items

__all__ = ["init_app", "items"]


def init_app(app: Flask) -> None:
    from .views import bp

    app.register_blueprint(bp)
