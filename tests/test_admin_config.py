"""Module configuration per LMS context: validation (14 CECs), CSRF, audit log, versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lti_tool import db
from lti_tool.admin import AuditEntry, CourseConfig, settings_for
from lti_tool.identity.models import Instructor, LmsContext
from lti_tool.record import CecAward, ledger
from tests.admin_helpers import Form, csrf_token, form, query, use_course


@pytest.fixture
def course(env):  # type: ignore[no-untyped-def]
    return use_course(env.app)


@pytest.fixture
def teacher(env, course):  # type: ignore[no-untyped-def]
    b = env.browser()
    env.launch("teacher-1", browser=b)
    return b


def config_form(env, b) -> tuple[Form, str]:  # type: ignore[no-untyped-def]
    page = b.get(env.tool.url + "/admin/modules")
    assert page.status_code == 200, page.text[:500]
    return form(page, "/admin/modules"), page.text


def stored(env):  # type: ignore[no-untyped-def]
    def read(s):  # type: ignore[no-untyped-def]
        ctx = s.query(LmsContext).one()
        return settings_for(s, ctx.id, env.app.extensions["lti_tool.course"])

    with env.app.test_request_context():
        return query(env.app, read)


def audit_rows(env):  # type: ignore[no-untyped-def]
    return query(env.app, lambda s: s.query(AuditEntry).order_by(AuditEntry.id).all())


def test_the_page_shows_the_cec_distribution(env, teacher):
    f, html = config_form(env, teacher)
    assert "Full completion always awards 14 SPIN® CECs" in html
    assert "the modules offered carry 16 SPIN® CECs" in html
    for share in ("57.1 %", "42.9 %", "14.3 %"):  # 8, 6 and 2 of 14
        assert share in html
    assert f.data()["version"] == "0"


def test_a_valid_change_is_saved_versioned_and_audited(env, teacher):
    f, _ = config_form(env, teacher)
    data = f.data(**{
        "position-basics": "2", "position-practice": "1", "offered-extra": None,
        "required-extra": None, "required-practice": "on", "pass_mark_percent": "90",
        "cooldown_minutes": "15", "languages": ["de", "es"], "course_language": "de",
        "starts_on": "2026-01-01", "ends_on": "2026-12-31",
    })
    before = datetime.now(UTC)
    saved = teacher.post(f.action, data)
    assert saved.status_code == 200 and "done=saved" in saved.url, saved.text[:800]
    assert "The configuration was saved" in saved.text
    s = stored(env)
    assert s.module_order == ("practice", "basics", "extra")
    assert s.offered == {"practice", "basics"}
    assert s.required == {"practice"}
    assert (s.pass_mark_percent, s.cooldown_seconds) == (90, 900)
    assert s.languages == ("de", "es") and s.course_language == "de"
    assert (s.starts_on.isoformat(), s.ends_on.isoformat()) == ("2026-01-01", "2026-12-31")
    assert s.version == 1
    (entry,) = audit_rows(env)
    assert entry.action == "configure"
    assert entry.actor == "Tina Teacher (teacher-1)"
    assert db.as_utc(entry.at) >= before.replace(microsecond=0)
    teacher_id = query(env.app, lambda s: s.query(Instructor).filter_by(sub="teacher-1").one().id)
    assert entry.actor_instructor_id == teacher_id
    fields = entry.changes["fields"]
    assert fields["pass_mark_percent"] == [80, 90]
    assert fields["offered"] == [["basics", "practice", "extra"], ["practice", "basics"]]
    assert fields["module_order"][1] == ["practice", "basics", "extra"]
    assert "allow_assistants" not in fields  # only what changed
    # The audit page shows who, when and what.
    log = teacher.get(env.tool.url + "/admin/audit")
    assert "Tina Teacher (teacher-1)" in log.text
    assert "Pass mark in percent: 80 → 90" in log.text


def test_a_configuration_that_cannot_award_14_cecs_is_refused(env, teacher):
    f, _ = config_form(env, teacher)
    refused = teacher.post(f.action, f.data(**{"offered-practice": None,
                                               "required-practice": None}))
    assert refused.status_code == 422
    assert "carry 10 SPIN® CECs, so learners could not earn the 14 SPIN® CECs" in refused.text
    # The form comes back as typed, and nothing was stored or logged.
    assert 'id="offered-practice" name="offered-practice" >' in refused.text
    assert stored(env).version == 0
    assert audit_rows(env) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"offered-basics": None}, "offered"),  # 6 + 2 < 14
        ({"required-basics": "on", "required-practice": "on", "required-extra": "on"},
         "required"),  # 16 > 14
        ({"offered-extra": None, "required-extra": "on"}, "required-extra"),
        ({"pass_mark_percent": "49"}, "pass_mark_percent"),
        ({"pass_mark_percent": "abc"}, "pass_mark_percent"),
        ({"cooldown_minutes": "-1"}, "cooldown_minutes"),
        ({"languages": None}, "languages"),
        ({"course_language": "fr"}, "course_language"),
        ({"starts_on": "2026-13-01"}, "starts_on"),
        ({"starts_on": "2026-05-01", "ends_on": "2026-04-30"}, "ends_on"),
        ({"position-basics": "0"}, "position-basics"),
    ],
)
def test_invalid_values_are_refused_field_by_field(env, teacher, change, field):
    f, _ = config_form(env, teacher)
    refused = teacher.post(f.action, f.data(**change))
    assert refused.status_code == 422
    assert ('id="error-' + field + '"' in refused.text) or field in ("offered", "required")
    assert stored(env).version == 0
    assert audit_rows(env) == []


def test_leaving_out_the_optional_module_is_fine(env, teacher):
    f, _ = config_form(env, teacher)
    saved = teacher.post(f.action, f.data(**{"offered-extra": None}))
    assert "done=saved" in saved.url, saved.text[:500]
    assert stored(env).offered == {"basics", "practice"}


def test_saving_without_changes_changes_nothing(env, teacher):
    f, _ = config_form(env, teacher)
    saved = teacher.post(f.action, f.data())
    assert "done=unchanged" in saved.url
    assert stored(env).version == 0
    assert audit_rows(env) == []


def test_two_admins_cannot_overwrite_each_other_unseen(env, teacher):
    other = env.browser()
    env.lms.add_user("teacher-2", name="Otto Other")
    env.lms.enrol(env.context_id, "teacher-2", roles=["Instructor"])
    env.launch("teacher-2", browser=other)
    mine, _ = config_form(env, teacher)
    theirs, _ = config_form(env, other)
    assert other.post(theirs.action, theirs.data(pass_mark_percent="85")).status_code == 200
    late = teacher.post(mine.action, mine.data(pass_mark_percent="95"))
    assert late.status_code == 409
    assert "Someone else saved the configuration" in late.text
    assert stored(env).pass_mark_percent == 85
    assert [e.actor for e in audit_rows(env)] == ["Otto Other (teacher-2)"]


# ----------------------------------------------------------------------------- CSRF


def test_a_forged_post_changes_nothing(env, teacher):
    f, _ = config_form(env, teacher)
    forged = f.data(pass_mark_percent="50", **{"offered-extra": None})
    for token in (None, "forged", "x" * 40):
        data = dict(forged)
        if token is None:
            data.pop("csrf_token")
        else:
            data["csrf_token"] = token
        resp = teacher.post(f.action, data)
        assert resp.status_code == 400, resp.status_code
        assert "This form has expired" in resp.text
    # A valid token of another person's session does not work either.
    learner = env.browser()
    home = env.launch("learner-1", browser=learner)
    resp = teacher.post(f.action, dict(forged, csrf_token=csrf_token(home)))
    assert resp.status_code == 400
    # A cross-site form: the teacher's own cookie, but no token at all.
    resp = teacher.request("POST", f.action, data={"pass_mark_percent": "50"},
                           initiator="https://evil.example")
    assert resp.status_code in (400, 401)
    assert stored(env).version == 0
    assert audit_rows(env) == []


def test_forged_resends_change_nothing(env, teacher):
    for path in ("/admin/learners/resend", "/admin/learners/1/resend"):
        resp = teacher.post(env.tool.url + path, {"csrf_token": "forged"})
        assert resp.status_code == 400
    assert audit_rows(env) == []


# ----------------------------------------------------------------------------- completed work


def test_changes_apply_to_new_work_and_keep_what_learners_completed(env, teacher):
    env.launch("learner-1")

    def award(s):  # type: ignore[no-untyped-def]
        inst = s.query(Instructor).filter_by(sub="learner-1").one()
        ledger.award_module(
            s, instructor_id=inst.id, course_id="fixture-course", module_id="extra",
            course_version="1", cecs=2.0, exam_date=None, now=db.utcnow(),
        )
        s.commit()

    query(env.app, award)
    f, _ = config_form(env, teacher)
    saved = teacher.post(f.action, f.data(pass_mark_percent="100", **{"offered-extra": None}))
    assert "done=saved" in saved.url
    awards = query(env.app, lambda s: s.query(CecAward).all())
    assert [(a.module_id, float(a.cecs)) for a in awards] == [("extra", 2.0)]
    report = teacher.get(env.tool.url + "/admin/learners?q=Ana")
    assert "Ana García" in report.text
    # Her 2 CECs stay; the module she passed is no longer offered, so 0 of 2 offered passed.
    row = report.text[report.text.index("Ana García"):]
    assert "<td>2</td>" in row[:2000]
    assert query(env.app, lambda s: s.query(CourseConfig).one().version) == 1
