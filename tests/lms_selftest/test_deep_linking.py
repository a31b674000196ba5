"""Deep Linking request and the return endpoint's verification of the response JWT."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.lms import Browser, TestPlatform
from tests.lms import claims as C
from tests.lms.keys import KeyPair
from tests.lms.model import LaunchPlan
from tests.lms_selftest.fake_tool import FakeTool

ITEM: dict[str, Any] = {
    "type": "ltiResourceLink",
    "title": "Module 1 quiz",
    "url": "http://127.0.0.1:1/quiz/1",
    "custom": {"module": "1"},
    "lineItem": {"scoreMaximum": 14, "label": "Module 1", "tag": "quiz", "resourceId": "m1"},
}


@pytest.fixture
def plan(lms: TestPlatform, tool: FakeTool) -> LaunchPlan:
    tool.register()
    plan = lms.prepare_launch(
        "tool-1", user_id="t-1", context_id="ctx-1", message_type="LtiDeepLinkingRequest"
    )
    with Browser() as b:
        assert b.launch(plan).status_code == 200
    return plan


def post(lms: TestPlatform, token: str) -> requests.Response:
    return requests.post(lms.deep_link_return_url, data={"JWT": token}, timeout=5)


def test_accepted_response_creates_links_and_lineitems(
    lms: TestPlatform, tool: FakeTool, plan: LaunchPlan
) -> None:
    extra: dict[str, Any] = {C.DL_MSG: "Added"}
    resp = post(lms, tool.dl_response(plan, [ITEM], **extra))
    assert resp.status_code == 200, resp.text
    assert "Content received" in resp.text and "Module 1 quiz" in resp.text
    [record] = lms.deep_link_responses
    assert record.plan_id == plan.plan_id and record.msg == "Added"
    [link] = record.created_links
    assert link.url == ITEM["url"] and link.custom == {"module": "1"}
    [li] = record.created_lineitems
    assert (li.label, li.score_maximum, li.tag, li.resource_id) == ("Module 1", 14, "quiz", "m1")
    assert li.resource_link_id == link.id
    # The created link launches with its own URL, custom values and coupled line item.
    launch = lms.prepare_launch(
        "tool-1", user_id="u-1", context_id="ctx-1", resource_link_id=link.id
    )
    assert launch.target_link_uri == ITEM["url"]
    assert launch.claims[C.CUSTOM] == {"module": "1"}
    assert launch.claims[C.AGS_ENDPOINT]["lineitem"] == li.url
    again = post(lms, tool.dl_response(plan, [ITEM]))
    assert again.status_code == 400, "a deep linking request is answered once"


def test_empty_selection_is_accepted(lms: TestPlatform, tool: FakeTool, plan: LaunchPlan) -> None:
    assert post(lms, tool.dl_response(plan, [])).status_code == 200
    assert lms.deep_link_responses[0].content_items == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "https://other.example"}, "aud"),
        ({C.DL_DATA: "tampered"}, "data"),
        ({C.DL_DATA: None}, "echo"),
        ({C.MESSAGE_TYPE: "LtiResourceLinkRequest"}, "message_type"),
        ({C.VERSION: "1.1"}, "version"),
        ({C.DEPLOYMENT_ID: "dep-x"}, "deployment_id"),
        ({"nonce": None}, "nonce"),
        ({"exp": 1}, "expired"),
        ({"iss": "someone"}, "registered"),
        ({C.DL_CONTENT_ITEMS: [{"type": "link", "url": "http://x.example"}]}, "accept_types"),
        ({C.DL_CONTENT_ITEMS: [{"type": "ltiResourceLink"}]}, "title"),
        ({C.DL_CONTENT_ITEMS: [{**ITEM, "custom": {"n": 1}}]}, "custom"),
        ({C.DL_CONTENT_ITEMS: [{**ITEM, "lineItem": {"scoreMaximum": 0}}]}, "scoreMaximum"),
        ({C.DL_CONTENT_ITEMS: [{**ITEM, "url": "/relative"}]}, "url"),
    ],
)
def test_rejections(
    lms: TestPlatform, tool: FakeTool, plan: LaunchPlan, overrides: dict[str, Any], reason: str
) -> None:
    resp = post(lms, tool.dl_response(plan, [ITEM], **overrides))
    assert resp.status_code == 400
    assert reason in lms.deep_link_errors[-1], lms.deep_link_errors[-1]
    assert lms.deep_link_responses == []


def test_signature_and_multiplicity(lms: TestPlatform, tool: FakeTool) -> None:
    tool.register()
    plan = lms.prepare_launch(
        "tool-1",
        user_id="t-1",
        context_id="ctx-1",
        message_type="LtiDeepLinkingRequest",
        deep_linking_settings={"accept_multiple": False, "data": None},
    )
    with Browser() as b:
        b.launch(plan)
    forged = tool.dl_response(
        plan, [ITEM], key=KeyPair(tool.key.kid, KeyPair.generate().private_key)
    )
    assert post(lms, forged).status_code == 400 and "signature" in lms.deep_link_errors[-1]
    assert post(lms, tool.dl_response(plan, [ITEM, ITEM])).status_code == 400
    assert "accept_multiple" in lms.deep_link_errors[-1]
    assert post(lms, "").status_code == 400
    assert post(lms, tool.dl_response(plan, [ITEM])).status_code == 200


def test_browser_posts_the_tools_auto_submit_form(
    lms: TestPlatform, tool: FakeTool, plan: LaunchPlan
) -> None:
    token = tool.dl_response(plan, [ITEM])
    page = (
        f'<form method="post" action="{lms.deep_link_return_url}">'
        f'<input type="hidden" name="JWT" value="{token}"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    tool_page = requests.Response()
    tool_page._content = page.encode()
    tool_page.url = tool.url + "/dl"
    tool_page.headers["Content-Type"] = "text/html"
    with Browser() as b:
        resp = b.submit_form(tool_page)
    assert resp.status_code == 200 and len(lms.deep_link_responses) == 1
