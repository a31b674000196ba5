"""The request as pylti1p3 sees it."""

from __future__ import annotations

from flask import request
from pylti1p3.contrib.flask import FlaskRequest


def lti_request() -> FlaskRequest:
    """pylti1p3's FlaskRequest over the request's parameters, read once.

    pylti1p3 looks parameters up one at a time, each through Flask's request proxy (over fifty
    lookups per launch); given the parameters as a dict it reads them from there instead.
    """
    params = request.args if request.method == "GET" else request.form
    return FlaskRequest(request_data=params.to_dict())
