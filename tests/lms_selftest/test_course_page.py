"""The LMS-like course page, the storage frame and its postMessage handler (run in node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
import requests

from tests.lms import TestPlatform
from tests.lms.model import ToolRegistration
from tests.lms.storage_page import STORAGE_JS
from tests.lms_selftest.fake_tool import FakeTool


def test_course_page_frames_the_launch(
    lms: TestPlatform, tool: FakeTool, reg: ToolRegistration
) -> None:
    plan = lms.prepare_launch(
        "tool-1", user_id="u-1", context_id="ctx-1", lti_storage_target="post_message_forwarding"
    )
    html = requests.get(lms.course_url(plan, method="POST"), timeout=5).text
    assert 'name="tool"' in html and 'allow="geolocation *; microphone *' in html
    assert 'target="tool"' in html and f'action="{tool.url}/login"' in html
    assert f'name="lti_message_hint" value="{plan.lti_message_hint}"' in html
    assert 'name="post_message_forwarding"' in html and "/platform_storage/frame" in html
    assert '"method": "post"' in html and "Cycling 101" in html
    plain = lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1")
    html = requests.get(lms.course_url(plain), timeout=5).text
    assert "storage_frame" not in html.split("<script>")[0] and '"method": "get"' in html
    assert requests.get(lms.url + "/course/nope", timeout=5).status_code == 404


def test_storage_frame_log_and_return(lms: TestPlatform) -> None:
    frame = requests.get(lms.url + "/platform_storage/frame?name=pmf", timeout=5).text
    assert "LtiPlatformStorage.install" in frame and '"storageFrame": "pmf"' in frame
    requests.post(lms.url + "/platform_storage/log", json={"direction": "request"}, timeout=5)
    assert lms.storage_messages == [{"direction": "request"}]
    back = requests.get(lms.url + "/course/return?lti_errormsg=Oops&plan=p", timeout=5)
    assert "Oops" in back.text and lms.returns == [{"lti_errormsg": "Oops", "plan": "p"}]


HARNESS = """
const vm = require('vm');
const script = process.argv[1];
const messages = JSON.parse(process.argv[2]);
const sent = [], logs = [];
let listener = null;
const window = {
  addEventListener: (type, fn) => { if (type === 'message') listener = fn; },
  fetch: (url, opts) => { logs.push(JSON.parse(opts.body)); return Promise.resolve(); },
};
const context = vm.createContext({window});
vm.runInContext(script, context);
const api = context.window.LtiPlatformStorage;
api.install(context.window, {storageFrame: 'post_message_forwarding', logUrl: '/log',
                             storage: api.memoryStorage()});
for (const m of messages) {
  listener({data: m.data, origin: m.origin,
            source: {postMessage: (msg, target) => sent.push({msg, target})}});
}
process.stdout.write(JSON.stringify({sent, logs}));
"""

TOOL = "https://tool.example"


def run_storage(messages: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    out = subprocess.run(
        [node, "-e", HARNESS, STORAGE_JS, json.dumps(messages)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(json.loads(out.stdout))


def msg(data: Any, origin: str = TOOL) -> dict[str, Any]:
    return {"data": data, "origin": origin}


def test_platform_storage_messages() -> None:
    result = run_storage(
        [
            msg({"subject": "lti.capabilities", "message_id": "m0"}),
            msg(
                {
                    "subject": "lti.put_data",
                    "message_id": "m1",
                    "key": "state_abc",
                    "value": "nonce-1",
                }
            ),
            msg({"subject": "lti.get_data", "message_id": "m2", "key": "state_abc"}),
            msg(
                {"subject": "lti.get_data", "message_id": "m3", "key": "state_abc"},
                "https://evil.example",
            ),
            msg(
                json.dumps(
                    {
                        "subject": "org.imsglobal.lti.get_data",
                        "message_id": "m4",
                        "key": "state_abc",
                    }
                )
            ),
            msg({"subject": "lti.put_data", "message_id": "m5", "value": "x"}),
            msg({"subject": "lti.get_data", "key": "k"}),
            msg({"subject": "lti.frobnicate", "message_id": "m7"}),
            msg({"subject": "not.lti", "message_id": "m8"}),
            msg({"subject": "lti.put_data.response", "message_id": "m9"}),
            msg(
                {"subject": "lti.put_data", "message_id": "m10", "key": "big", "value": "x" * 5000}
            ),
            msg({"subject": "lti.put_data", "message_id": "m11", "key": "state_abc", "value": ""}),
            msg({"subject": "lti.get_data", "message_id": "m12", "key": "state_abc"}),
        ]
    )
    replies = {s["msg"].get("message_id"): s for s in result["sent"]}
    assert all(s["target"] in (TOOL, "https://evil.example") for s in result["sent"])
    caps = replies["m0"]["msg"]
    assert caps["subject"] == "lti.capabilities.response"
    assert {"subject": "lti.put_data", "frame": "post_message_forwarding"} in caps[
        "supported_messages"
    ]
    assert replies["m1"]["msg"] == {
        "subject": "lti.put_data.response",
        "message_id": "m1",
        "key": "state_abc",
        "value": "nonce-1",
    }
    assert replies["m2"]["msg"]["value"] == "nonce-1"
    assert replies["m3"]["msg"]["value"] is None, "data is kept per origin"
    assert replies["m4"]["msg"]["subject"] == "org.imsglobal.lti.get_data.response"
    assert replies["m4"]["msg"]["value"] == "nonce-1"
    assert replies["m5"]["msg"]["error"]["code"] == "bad_request"
    assert replies[None]["msg"]["error"]["code"] == "bad_request"
    assert replies["m7"]["msg"]["error"]["code"] == "unsupported_subject"
    assert "m8" not in replies and "m9" not in replies
    assert replies["m10"]["msg"]["error"]["code"] == "storage_exhaustion"
    assert replies["m11"]["msg"] == {
        "subject": "lti.put_data.response",
        "message_id": "m11",
        "key": "state_abc",
    }
    assert replies["m12"]["msg"]["value"] is None
    assert {entry["direction"] for entry in result["logs"]} == {"request", "response"}


SYNTAX = """
const vm = require('vm');
for (const src of JSON.parse(process.argv[1])) { new vm.Script(src); }
"""


def test_page_scripts_parse(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    plan = lms.prepare_launch(
        "tool-1", user_id="u-1", context_id="ctx-1", lti_storage_target="post_message_forwarding"
    )
    pages = [
        requests.get(lms.course_url(plan), timeout=5).text,
        requests.get(lms.url + "/platform_storage/frame", timeout=5).text,
        requests.get(lms.registration_page_url("http://127.0.0.1:9/reg"), timeout=5).text,
    ]
    scripts = [
        chunk.split("</script>")[0] for html in pages for chunk in html.split("<script>")[1:]
    ]
    assert len(scripts) == 5
    subprocess.run([node, "-e", SYNTAX, json.dumps(scripts)], check=True, timeout=30)
