"""The content items of a Deep Linking 2.0 response, and the signed response message.

Built on pylti1p3's `DeepLink`/`DeepLinkResource`, with three differences the specification
asks for: an item may carry `text` (DL 2.0 §3.4.1), a missing `url` is left out rather than sent
as null, and `data` is echoed only when the request had it (§4.4.1: "must be echoed back").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import force_locale, format_decimal
from flask_babel import gettext as _
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.lineitem import LineItem

from ..admin import CourseSettings
from ..content import Course

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
# The tag grade passback (lti_tool.passback) finds a link's gradebook column by, so that the
# column the platform created from this response is the one the scores go to.
TAG = "spin-cecs"
COURSE_ITEM = "course"
COURSE_RESOURCE_ID = "spin-recertification"
MAX_TEXT = 1000


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


class Resource(DeepLinkResource):
    """An `ltiResourceLink` content item with an optional plain-text description."""

    def __init__(self, text: str | None = None) -> None:
        super().__init__()
        self._text = text

    def to_dict(self) -> dict[str, object]:
        item = super().to_dict()
        if item.get("url") is None:
            item.pop("url", None)
        if not item.get("custom"):
            item.pop("custom", None)
        if self._text:
            item["text"] = self._text
        return item


class Response(DeepLink):
    """The LtiDeepLinkingResponse message, signed with the tool's current key and kid."""

    def __init__(
        self,
        registration: Any,
        deployment_id: str,
        settings: dict[str, Any],
        msg: str | None = None,
    ) -> None:
        super().__init__(registration, deployment_id, settings)  # type: ignore[arg-type]
        self._msg = msg

    def get_message_jwt(self, resources: Sequence[DeepLinkResource]) -> dict[str, object]:
        message = super().get_message_jwt(resources)
        if "data" not in self._deep_link_settings:
            message.pop(DL + "data", None)
        if self._msg:
            message[DL + "msg"] = self._msg
        return message


def choices(course: Course, settings: CourseSettings) -> list[str]:
    """What an admin may place: the whole course, then each offered module in order."""
    return [COURSE_ITEM] + [m.id for m in settings.modules(course)]


def _plain(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1].rstrip() + "…"


def build(
    course: Course,
    settings: CourseSettings,
    selection: Sequence[str],
    *,
    lang: str,
    launch_url: str,
    with_lineitem: bool,
) -> list[Resource]:
    """One `ltiResourceLink` per selected entry, in the order of `choices`, in `lang`."""
    def pick(value: dict[str, str]) -> str:
        return value.get(lang) or value.get(course.languages[0], "")

    wanted = set(selection)
    out: list[Resource] = []
    with force_locale(lang):
        if COURSE_ITEM in wanted:
            total = float(course.cecs)
            title = pick(course.title)
            item = Resource(_plain(pick(course.description)) or None)
            item.set_title(title).set_url(launch_url)
            if with_lineitem:
                item.set_lineitem(
                    LineItem()
                    .set_score_maximum(_number(total))
                    .set_label(_("%(title)s – SPIN® CECs", title=title))
                    .set_tag(TAG)
                    .set_resource_id(COURSE_RESOURCE_ID)
                )
            out.append(item)
        for number, module in enumerate(settings.modules(course), start=1):
            if module.id not in wanted:
                continue
            title = _("Module %(n)s: %(title)s", n=number, title=pick(module.title))
            cecs = float(module.cecs)
            text = _plain(
                pick(module.summary) + " " + _("Passing its quiz awards %(cecs)s SPIN® CECs.",
                                               cecs=format_decimal(cecs))
            )
            item = Resource(text)
            item.set_title(title).set_url(launch_url).set_custom_params({"module": module.id})
            if with_lineitem:
                item.set_lineitem(
                    LineItem()
                    .set_score_maximum(_number(cecs))
                    .set_label(_("%(title)s – SPIN® CECs", title=title))
                    .set_tag(TAG)
                    .set_resource_id(module.id)
                )
            out.append(item)
    return out
