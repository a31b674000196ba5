"""The learner progress report: the LMS roster through NRPS 2.0 (pages, rlid, tokens) joined
with the tool's records; filters, sorting, CSV export, grade resends.

1EdTech certification §6.3: the tool obtains an OAuth 2 token (client credentials, signed
assertion) with the membership scope, and GETs the membership container with it.
"""

from __future__ import annotations

import csv
import io
import time

import pytest

from lti_tool import db
from lti_tool.admin import AuditEntry
from lti_tool.identity.models import Instructor
from lti_tool.record import ledger
from tests.admin_helpers import csrf_token, form, query, session_token, use_course
from tests.lms import claims as C

NEVER = ["learner-3", "learner-4", "learner-5", "learner-6"]


@pytest.fixture
def course(env):  # type: ignore[no-untyped-def]
    return use_course(env.app)


@pytest.fixture
def roster(env, course):  # type: ignore[no-untyped-def]
    """Seven members over four pages; four learners never open the course."""
    names = ["Carla Díaz", "=HYPERLINK(\"http://x\")", "Dora Düsentrieb", "Eve Evans"]
    for uid, name in zip(NEVER, names, strict=True):
        env.lms.add_user(uid, name=name, email=f"{uid}@example.org")
        env.lms.enrol(env.context_id, uid)
    env.lms.nrps_page_size = 2
    return env


@pytest.fixture
def urls(env):  # type: ignore[no-untyped-def]
    """Every URL the tool's NRPS client asks for (observed, not changed)."""
    seen: list[str] = []
    http = env.app.extensions["lti_tool.admin.http"]
    http.hooks["response"].append(lambda r, *a, **k: seen.append(r.request.url))
    return seen


def award(env, sub, module, cecs):  # type: ignore[no-untyped-def]
    def run(s):  # type: ignore[no-untyped-def]
        inst = s.query(Instructor).filter_by(sub=sub).one()
        ledger.award_module(
            s, instructor_id=inst.id, course_id="fixture-course", module_id=module,
            course_version="1", cecs=cecs, exam_date=None, now=db.utcnow(),
        )
        s.commit()

    query(env.app, run)


def teacher(env, **kw):  # type: ignore[no-untyped-def]
    b = env.browser()
    env.launch("teacher-1", browser=b, **kw)
    return b


def nrps_tokens(env) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for t in env.lms.tokens.values() if C.SCOPE_NRPS in t.scopes)


def nrps_pages(env) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in env.lms.service_requests if r[0] == "nrps" and r[3] == 200)


def rows(html: str) -> list[str]:
    body = html[html.index("<tbody>"): html.index("</tbody>")]
    return [chunk.split("</th>")[0] for chunk in body.split('<th scope="row">')[1:]]


def test_roster_from_several_pages_joined_with_records(roster, urls):
    env = roster
    env.launch("learner-1")
    award(env, "learner-1", "basics", 8.0)
    b = teacher(env)
    page = b.get(env.tool.url + "/admin/learners")
    assert page.status_code == 200, page.text[:500]
    names = rows(page.text)
    assert len(names) == 6  # six learners; the teacher is staff
    assert not any("Tina" in n for n in names)
    assert nrps_pages(env) == 4  # 7 members, 2 per page
    assert nrps_tokens(env) == 1
    # Every learner who never launched is listed as not started.
    assert page.text.count("badge-not_started") == 5
    ana = page.text[page.text.index("Ana García"):]
    assert "In progress" in ana[:1500] and "<td>8</td>" in ana[:1500]
    assert "1 of 3" in ana[:1500]
    # The next-page URLs were followed exactly as the LMS wrote them.
    members = [u for u in urls if "memberships" in u]
    assert len(members) == 4 and members[-1].endswith("limit=2&page=4")
    everyone = b.get(env.tool.url + "/admin/learners?who=all")
    assert len(rows(everyone.text)) == 7


def test_the_roster_is_cached_and_the_token_reused(roster):
    env = roster
    b = teacher(env)
    b.get(env.tool.url + "/admin/learners")
    pages = nrps_pages(env)
    b.get(env.tool.url + "/admin/learners")
    assert nrps_pages(env) == pages  # cached for a few minutes
    b.get(env.tool.url + "/admin/learners?refresh=1")
    assert nrps_pages(env) == 2 * pages
    assert nrps_tokens(env) == 1  # the access token was reused


def test_rlid_asks_for_the_members_of_one_placement(roster, urls):
    env = roster
    b = teacher(env)
    page = b.get(env.tool.url + "/admin/learners?link=rl-1")
    assert page.status_code == 200
    members = [u for u in urls if "memberships" in u]
    assert members and all("rlid=rl-1" in u for u in members)
    assert len(rows(page.text)) == 6
    # An unknown placement is ignored rather than sent to the LMS.
    urls.clear()
    b.get(env.tool.url + "/admin/learners?link=nope&refresh=1")
    assert any("memberships" in u for u in urls) and not any("rlid" in u for u in urls)


def test_a_refused_token_is_renewed_once(roster):
    env = roster
    b = teacher(env)
    b.get(env.tool.url + "/admin/learners")
    env.lms.faults.push("401", scope="nrps")
    page = b.get(env.tool.url + "/admin/learners?refresh=1")
    assert page.status_code == 200
    assert "could not be loaded" not in page.text
    assert len(rows(page.text)) == 6
    assert nrps_tokens(env) == 2


def test_without_the_roster_the_launched_learners_still_show(roster):
    env = roster
    env.launch("learner-2")
    b = teacher(env)
    env.lms.faults.push("500", scope="nrps", count=3)
    page = b.get(env.tool.url + "/admin/learners")
    assert page.status_code == 200
    assert "could not be loaded from the LMS" in page.text
    assert [n.split("<br>")[0] for n in rows(page.text)] == ["Ben Becker"]


def test_no_roster_service_offered(env, course):
    b = env.browser()
    env.launch("teacher-1", browser=b, nrps=False)
    env.launch("learner-1", nrps=False)
    page = b.get(env.tool.url + "/admin/learners")
    assert "did not offer the course roster" in page.text
    assert len(rows(page.text)) == 1


def test_filters_and_sorting(roster):
    env = roster
    env.launch("learner-1")
    env.launch("learner-2")
    award(env, "learner-1", "basics", 8.0)
    award(env, "learner-2", "basics", 8.0)
    award(env, "learner-2", "practice", 6.0)
    b = teacher(env)
    base = env.tool.url + "/admin/learners"
    assert len(rows(b.get(base + "?state=not_started").text)) == 4
    complete = rows(b.get(base + "?state=complete").text)
    assert [n.split("<br>")[0] for n in complete] == ["Ben Becker"]
    assert len(rows(b.get(base + "?q=D%C3%BCsentrieb").text)) == 1
    assert len(rows(b.get(base + "?q=example.org").text)) == 6
    by_cecs = [n.split("<br>")[0] for n in rows(b.get(base + "?sort=cecs&dir=desc").text)]
    assert by_cecs[:2] == ["Ben Becker", "Ana García"]
    page = b.get(base + "?sort=cecs&dir=desc")
    assert 'aria-sort="descending"' in page.text


def parse_csv(body: bytes, delimiter: str) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the file as UTF-8
    text = body.decode("utf-8-sig")
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


@pytest.mark.parametrize(("locale", "delimiter"), [("en-US", ","), ("de-DE", ";"),
                                                   ("es-ES", ";")])
def test_csv_export_of_the_same_data(roster, locale, delimiter):
    env = roster
    env.launch("learner-1")
    award(env, "learner-1", "basics", 8.0)
    b = teacher(env, locale=locale)
    page = b.get(env.tool.url + "/admin/learners?sort=cecs&dir=desc")
    resp = b.get(env.tool.url + "/admin/learners.csv?sort=cecs&dir=desc")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in resp.headers["Content-Disposition"]
    table = parse_csv(resp.content, delimiter)
    header, data = table[0], table[1:]
    assert len(header) == 11
    assert len(data) == len(rows(page.text)) == 6
    assert data[0][0] == "Ana García" and data[0][7] == "8"
    names = [r[0] for r in data]
    assert "Dora Düsentrieb" in names and "Carla Díaz" in names
    # A name that is a formula is neutralised (CSV injection).
    assert "'=HYPERLINK(\"http://x\")" in names


def test_resend_one_learner_and_everyone(env, course):
    env.launch("learner-1")  # the first visit reports "Started" to the gradebook
    b = teacher(env)
    deadline = time.time() + 15
    while env.lms.score_requests < 1 and time.time() < deadline:
        time.sleep(0.1)
    sent = env.lms.score_requests
    assert sent >= 1
    page = b.get(env.tool.url + "/admin/learners")
    assert "Sent to the LMS" in page.text or "Waiting to be sent" in page.text
    f = form(page, "/resend")
    done = b.post(f.action, f.data())
    assert "done=resent" in done.url and "1 score was queued" in done.text
    deadline = time.time() + 15
    while env.lms.score_requests <= sent and time.time() < deadline:
        time.sleep(0.1)
    assert env.lms.score_requests > sent
    everyone = b.post(env.tool.url + "/admin/learners/resend",
                      {"csrf_token": csrf_token(done), "lt": session_token(done) or ""})
    assert "done=resent" in everyone.url
    actions = query(env.app, lambda s: [e.action for e in s.query(AuditEntry).all()])
    assert actions == ["resend_learner", "resend_all"]
