"""Why a launch, login or registration was refused, in words the learner can read.

Each refusal has a stable code (for logs and tests), an HTTP status in the 4xx range and a
translated message. Nothing about a refused request is ever a 5xx.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

_MESSAGES = {
    "missing_param": _l("The LMS did not send everything needed to start the course."),
    "unknown_platform": _l(
        "This LMS is not registered with the course tool. Ask your LMS administrator to "
        "register the tool before using it."
    ),
    "inactive_platform": _l(
        "The course tool has been switched off for this LMS. Ask your LMS administrator."
    ),
    "unknown_deployment": _l(
        "This placement of the course tool has not been activated yet. An administrator of the "
        "course tool must activate it; please try again later."
    ),
    "inactive_deployment": _l(
        "This placement of the course tool is not active. An administrator of the course tool "
        "must activate it."
    ),
    "bad_state": _l(
        "Your sign-in from the LMS could not be confirmed. It may have expired or been started in "
        "another window. Please go back to your LMS course and open the activity again."
    ),
    "cookies_blocked": _l(
        "Your browser blocked the cookie the course needs inside the LMS page. Open the course in "
        "a new window to continue."
    ),
    "bad_token": _l(
        "The launch message from your LMS was not valid, so the course was not opened. Please "
        "open the activity again from your LMS; if this keeps happening, tell your LMS "
        "administrator."
    ),
    "replayed": _l(
        "This launch has already been used. For your security each launch works once: go back to "
        "your LMS course and open the activity again."
    ),
    "expired": _l(
        "The launch message from your LMS has expired. Please open the activity again from "
        "your LMS."
    ),
    "platform_keys": _l(
        "The course tool could not check the signature of your LMS. Please try again in a few "
        "minutes; if this keeps happening, tell your LMS administrator."
    ),
    "bad_target": _l("The LMS asked for a page that is not part of the course tool."),
    "unsupported_message": _l("The course tool cannot handle this kind of LTI message."),
    "bad_registration": _l("The LTI registration request was not valid."),
    "registration_failed": _l(
        "The LMS did not accept the registration. The LMS administrator can see the details in "
        "the LMS and try again."
    ),
}


class LtiError(Exception):
    """A refusal with a user-facing message; `detail` goes to the log, never to the page."""

    def __init__(self, code: str, detail: str = "", status: int = 400) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        assert code in _MESSAGES, code
        assert 400 <= status < 500
        self.code = code
        self.detail = detail
        self.status = status

    @property
    def message(self) -> str:
        return str(_MESSAGES[self.code])
