"""Names and Role Provisioning Services."""

from __future__ import annotations

import pytest
import requests

from tests.lms import TestPlatform
from tests.lms import claims as C
from tests.lms.model import ToolRegistration
from tests.lms.web import with_query
from tests.lms_selftest.fake_tool import FakeTool


@pytest.fixture
def session(lms: TestPlatform, tool: FakeTool, reg: ToolRegistration) -> requests.Session:
    lms.prepare_launch("tool-1", user_id="u-1", context_id="ctx-1", resource_link_id="rl-1")
    s = requests.Session()
    s.headers["Authorization"] = "Bearer " + tool.token([C.SCOPE_NRPS])
    s.headers["Accept"] = C.MT_MEMBERSHIP_CONTAINER
    return s


def test_membership_container(lms: TestPlatform, session: requests.Session) -> None:
    resp = session.get(lms.memberships_url("ctx-1"), timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == C.MT_MEMBERSHIP_CONTAINER
    body = resp.json()
    assert body["context"] == {"id": "ctx-1", "label": "CYC101", "title": "Cycling 101"}
    ana = next(m for m in body["members"] if m["user_id"] == "u-1")
    assert ana["status"] == "Active" and ana["roles"] == [C.ROLE_LEARNER]
    assert ana["name"] == "Ana García" and ana["email"] == "ana@example.org"
    assert {m["user_id"] for m in body["members"]} == {"u-1", "t-1"}


def test_paging_and_filters(lms: TestPlatform, session: requests.Session) -> None:
    for n in range(5):
        lms.add_user(f"s-{n}", name=f"Student {n}")
        lms.enrol("ctx-1", f"s-{n}", status="Inactive" if n == 0 else "Active")
    lms.nrps_page_size = 3
    url: str | None = lms.memberships_url("ctx-1")
    seen: list[str] = []
    pages = 0
    while url:
        resp = session.get(url, timeout=5)
        seen += [m["user_id"] for m in resp.json()["members"]]
        url = resp.links.get("next", {}).get("url")
        pages += 1
    assert pages == 3 and len(seen) == 7 == len(set(seen))
    lms.nrps_page_size = 100
    learners = session.get(with_query(lms.memberships_url("ctx-1"), role="Learner"), timeout=5)
    assert "t-1" not in {m["user_id"] for m in learners.json()["members"]}
    by_link = session.get(with_query(lms.memberships_url("ctx-1"), rlid="rl-1"), timeout=5)
    assert by_link.status_code == 200
    bad_link = session.get(with_query(lms.memberships_url("ctx-1"), rlid="nope"), timeout=5)
    assert bad_link.status_code == 400
    small = session.get(with_query(lms.memberships_url("ctx-1"), limit=2), timeout=5)
    assert len(small.json()["members"]) == 2 and "next" in small.links


def test_nrps_auth(lms: TestPlatform, tool: FakeTool, session: requests.Session) -> None:
    assert requests.get(lms.memberships_url("ctx-1"), timeout=5).status_code == 401
    score_only = {"Authorization": "Bearer " + tool.token([C.SCOPE_SCORE])}
    assert (
        requests.get(lms.memberships_url("ctx-1"), headers=score_only, timeout=5).status_code == 403
    )
    assert session.get(lms.memberships_url("ctx-other"), timeout=5).status_code == 404
    wrong_accept = session.get(
        lms.memberships_url("ctx-1"), headers={"Accept": "text/html"}, timeout=5
    )
    assert wrong_accept.status_code == 406
    lms.faults.push("500", scope="nrps")
    assert session.get(lms.memberships_url("ctx-1"), timeout=5).status_code == 500
