"""Assignment and Grade Services: line items, scores, results, strict URLs and faults."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.lms import TestPlatform
from tests.lms import claims as C
from tests.lms.model import ToolRegistration
from tests.lms.web import insert_path, with_query
from tests.lms_selftest.fake_tool import FakeTool

T0 = datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


def ts(seconds: float = 0) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


class Api:
    def __init__(self, lms: TestPlatform, token: str) -> None:
        self.lms = lms
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def create(self, **body: Any) -> requests.Response:
        body.setdefault("label", "Quiz 1")
        body.setdefault("scoreMaximum", 14)
        return self.s.post(
            self.lms.lineitems_url("ctx-1", "tool-1"),
            data=json.dumps(body),
            headers={"Content-Type": C.MT_LINEITEM},
            timeout=5,
        )

    def score(self, lineitem_url: str, timeout: float = 5, **body: Any) -> requests.Response:
        full: dict[str, Any] = {
            "userId": "u-1",
            "scoreGiven": 7,
            "scoreMaximum": 14,
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": ts(),
        }
        full.update(body)
        full = {k: v for k, v in full.items() if v is not None}
        return self.s.post(
            insert_path(lineitem_url, "/scores"),
            data=json.dumps(full),
            headers={"Content-Type": C.MT_SCORE},
            timeout=timeout,
        )


@pytest.fixture
def api(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> Api:
    # A launch places the tool in ctx-1 and creates resource link rl-1.
    lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1", resource_link_id="rl-1")
    return Api(lms, tool.token())


@pytest.fixture
def lineitem(api: Api) -> str:
    resp = api.create(resourceLinkId="rl-1", tag="quiz", resourceId="module-1")
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_lineitem_create_read_update_delete(api: Api, lineitem: str) -> None:
    assert "?type_id=" in lineitem
    got = api.s.get(lineitem, timeout=5)
    assert got.status_code == 200 and got.headers["Content-Type"] == C.MT_LINEITEM
    body = got.json()
    assert body == {
        "id": lineitem,
        "label": "Quiz 1",
        "scoreMaximum": 14,
        "resourceLinkId": "rl-1",
        "tag": "quiz",
        "resourceId": "module-1",
    }
    body["label"] = "Quiz one"
    put = api.s.put(
        lineitem, data=json.dumps(body), headers={"Content-Type": C.MT_LINEITEM}, timeout=5
    )
    assert put.status_code == 200 and put.json()["label"] == "Quiz one"
    assert api.s.delete(lineitem, timeout=5).status_code == 204
    assert api.s.get(lineitem, timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"label": ""}, "label"),
        ({"scoreMaximum": 0}, "scoreMaximum"),
        ({"scoreMaximum": "10"}, "scoreMaximum"),
        ({"resourceLinkId": "rl-unknown"}, "resourceLinkId"),
        ({"endDateTime": "2025-03-01T10:00:00"}, "endDateTime"),
    ],
)
def test_lineitem_validation(api: Api, body: dict[str, Any], reason: str) -> None:
    resp = api.create(**body)
    assert resp.status_code == 400 and reason in resp.json()["error_description"]


def test_lineitem_media_type_is_enforced(api: Api) -> None:
    resp = api.s.post(
        api.lms.lineitems_url("ctx-1", "tool-1"), json={"label": "x", "scoreMaximum": 1}, timeout=5
    )
    assert resp.status_code == 415


def test_container_filters_and_paging(api: Api, lms: TestPlatform) -> None:
    for n in range(5):
        api.create(label=f"Q{n}", tag="quiz" if n % 2 else "exam", resourceLinkId="rl-1")
    lms.lineitems_page_size = 2
    url: str | None = lms.lineitems_url("ctx-1", "tool-1")
    labels: list[str] = []
    while url:
        resp = api.s.get(url, timeout=5)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == C.MT_LINEITEM_CONTAINER
        labels += [li["label"] for li in resp.json()]
        url = resp.links.get("next", {}).get("url")
    assert labels == ["Q0", "Q1", "Q2", "Q3", "Q4"]
    lms.lineitems_page_size = 100
    tagged = api.s.get(
        with_query(lms.lineitems_url("ctx-1", "tool-1"), tag="quiz"), timeout=5
    ).json()
    assert [li["label"] for li in tagged] == ["Q1", "Q3"]
    limited = api.s.get(
        with_query(lms.lineitems_url("ctx-1", "tool-1"), limit=1, resource_link_id="rl-1"),
        timeout=5,
    )
    assert len(limited.json()) == 1 and 'rel="next"' in limited.headers["Link"]


def test_naively_built_urls_fail(api: Api, lms: TestPlatform, lineitem: str) -> None:
    naive = lineitem + "/scores"
    resp = api.s.post(naive, data="{}", headers={"Content-Type": C.MT_SCORE}, timeout=5)
    assert resp.status_code == 400 and "before the query string" in resp.json()["error_description"]
    stripped = lineitem.split("?")[0] + "/scores"
    assert (
        api.s.post(stripped, data="{}", headers={"Content-Type": C.MT_SCORE}, timeout=5).status_code
        == 404
    )
    container = lms.lineitems_url("ctx-1", "tool-1") + "?tag=quiz"
    assert api.s.get(container, timeout=5).status_code == 400
    assert lms.score_requests == 2


def test_score_publish_and_results(api: Api, lms: TestPlatform, lineitem: str) -> None:
    resp = api.score(lineitem, comment="Well done")
    assert resp.status_code == 200, resp.text
    result = lms.result(lineitem, "u-1")
    assert result is not None and result.score_given == 7 and result.result_score == 7
    assert result.comment == "Well done" and result.grading_progress == "FullyGraded"
    assert len(lms.scores) == 1 and lms.score_requests == 1
    api.score(lineitem, scoreGiven=1, scoreMaximum=2, timestamp=ts(1))
    result = lms.result(lineitem, "u-1")
    assert result is not None and result.result_score == 7.0  # 1/2 scaled to 14
    results = api.s.get(insert_path(lineitem, "/results"), timeout=5)
    assert results.status_code == 200 and results.headers["Content-Type"] == C.MT_RESULT_CONTAINER
    assert results.json() == [
        {
            "id": insert_path(lineitem, "/results/u-1"),
            "scoreOf": lineitem,
            "userId": "u-1",
            "resultMaximum": 14,
            "resultScore": 7.0,
        }
    ]
    lms.score_status = 204
    assert api.score(lineitem, timestamp=ts(2)).status_code == 204


def test_progress_only_score(api: Api, lms: TestPlatform, lineitem: str) -> None:
    resp = api.score(
        lineitem,
        scoreGiven=None,
        scoreMaximum=None,
        activityProgress="Started",
        gradingProgress="NotReady",
    )
    assert resp.status_code == 200
    result = lms.result(lineitem, "u-1")
    assert result is not None and result.result_score is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"userId": None}, "userId"),
        ({"timestamp": None}, "timestamp"),
        ({"timestamp": "2025-03-01T10:00:00.123"}, "timestamp"),
        ({"timestamp": "2025-03-01 10:00:00Z"}, "timestamp"),
        ({"activityProgress": "completed"}, "activityProgress"),
        ({"gradingProgress": "Graded"}, "gradingProgress"),
        ({"scoreGiven": -1}, "scoreGiven"),
        ({"scoreGiven": "7"}, "scoreGiven"),
        ({"scoreMaximum": None}, "scoreMaximum is required"),
        ({"scoreMaximum": 0}, "scoreMaximum"),
        ({"comment": 5}, "comment"),
        ({"userId": "t-1"}, "gradable"),
        ({"userId": "ghost"}, "gradable"),
    ],
)
def test_score_validation(
    api: Api, lms: TestPlatform, lineitem: str, changes: dict[str, Any], reason: str
) -> None:
    resp = api.score(lineitem, **changes)
    assert resp.status_code == 400, resp.text
    assert reason in resp.json()["error_description"]
    assert lms.scores == [] and lms.rejected_scores


def test_score_media_type(api: Api, lms: TestPlatform, lineitem: str) -> None:
    resp = api.s.post(insert_path(lineitem, "/scores"), json={"userId": "u-1"}, timeout=5)
    assert resp.status_code == 415


def test_stale_and_duplicate_timestamps(api: Api, lms: TestPlatform, lineitem: str) -> None:
    assert api.score(lineitem, timestamp=ts(10), scoreGiven=10).status_code == 200
    assert api.score(lineitem, timestamp=ts(10), scoreGiven=11).status_code == 200
    assert api.score(lineitem, timestamp=ts(5), scoreGiven=12).status_code == 200
    # Same instant written with another offset is still a duplicate.
    other_zone = (
        (T0 + timedelta(seconds=10)).astimezone(datetime.now().astimezone().tzinfo).isoformat()
    )
    api.score(lineitem, timestamp=other_zone.replace("+00:00", "Z"), scoreGiven=13)
    result = lms.result(lineitem, "u-1")
    assert result is not None and result.score_given == 10
    assert [s.body["scoreGiven"] for s in lms.duplicate_timestamps] == [11, 13]
    assert [s.body["scoreGiven"] for s in lms.stale_scores] == [12]
    assert api.score(lineitem, timestamp=ts(10.000001), scoreGiven=14).status_code == 200
    assert lms.result(lineitem, "u-1").score_given == 14  # type: ignore[union-attr]


def test_bearer_checks(api: Api, lms: TestPlatform, tool: FakeTool, lineitem: str) -> None:
    anonymous = requests.get(lineitem, timeout=5)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith(
        "Bearer"
    )
    bogus = requests.get(lineitem, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bogus.status_code == 401 and 'error="invalid_token"' in bogus.headers["WWW-Authenticate"]
    narrow = Api(lms, tool.token([C.SCOPE_LINEITEM_READONLY]))
    assert narrow.s.get(lineitem, timeout=5).status_code == 200
    denied = narrow.score(lineitem)
    assert denied.status_code == 403 and "insufficient_scope" in denied.headers["WWW-Authenticate"]
    lms.expire_tokens()
    assert api.s.get(lineitem, timeout=5).status_code == 401
    assert lms.score_requests == 1


def test_other_tools_cannot_see_line_items(api: Api, lms: TestPlatform, lineitem: str) -> None:
    with FakeTool(lms, "tool-2") as other:
        other.register(deployment_ids=["dep-9"])
        lms.prepare_launch("tool-2", user_id="u-1", context_id="ctx-1")
        intruder = Api(lms, other.token())
        assert intruder.s.get(lineitem, timeout=5).status_code == 404
        own = intruder.s.get(lms.lineitems_url("ctx-1", "tool-2"), timeout=5)
        assert own.status_code == 200 and own.json() == []


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("500", 500),
        ("503", 503),
        ("429", 429),
        ("400_not_gradable", 400),
        ("401", 401),
    ],
)
def test_score_faults(api: Api, lms: TestPlatform, lineitem: str, kind: str, status: int) -> None:
    lms.faults.push(kind, count=2, retry_after=3)
    assert api.score(lineitem, timestamp=ts(1)).status_code == status
    if kind == "401":
        again = api.score(lineitem, timestamp=ts(2))
        assert again.status_code == 401, "the fault also revokes the token, like a real expiry"
        assert 'error="invalid_token"' in again.headers["WWW-Authenticate"]
        assert not any(t.valid() for t in lms.tokens.values())
        return
    second = api.score(lineitem, timestamp=ts(2))
    assert second.status_code == status
    if kind in ("429", "503"):
        assert second.headers["Retry-After"] == "3"
    assert api.score(lineitem, timestamp=ts(3)).status_code == 200
    assert lms.score_requests == 3 and len(lms.scores) == 1
    assert [e.kind for e in lms.faults.log] == [kind, kind]


def test_timeout_fault(api: Api, lms: TestPlatform, lineitem: str) -> None:
    lms.faults.push("timeout", seconds=0.6)
    with pytest.raises(requests.Timeout):
        api.score(lineitem, timeout=0.2)
    lms.faults.push("timeout", seconds=0.6, apply=True)
    with pytest.raises(requests.Timeout):
        api.score(lineitem, timeout=0.2, timestamp=ts(1))
    import time

    time.sleep(0.8)
    result = lms.result(lineitem, "u-1")
    assert result is not None and result.timestamp == ts(1)
    # A retry reusing the timestamp is exactly what duplicate_timestamps catches.
    assert api.score(lineitem, timestamp=ts(1)).status_code == 200
    assert len(lms.duplicate_timestamps) == 1


def test_fault_scopes(api: Api, lms: TestPlatform, lineitem: str) -> None:
    lms.faults.push("503", scope="ags")
    assert api.s.get(lineitem, timeout=5).status_code == 503
    lms.faults.push("500", count=5)
    assert lms.faults.pending == 5
    lms.faults.clear()
    assert api.score(lineitem).status_code == 200
    with pytest.raises(ValueError):
        lms.faults.push("418")
