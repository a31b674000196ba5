"""The instructor's record: cycle date logic, renewal status and fees, the ledger's guarantees,
the exam-date form, certificates (PDF) and consent-based public verification."""

from __future__ import annotations

import io
import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from lti_tool import db
from lti_tool.identity.models import Instructor
from lti_tool.record import cycle as cyc
from lti_tool.record import ledger
from lti_tool.record.models import CecAward, Certificate
from tests.learning_helpers import read_module, submit, take_quiz, use_fixture_course

# --------------------------------------------------------------------------- date logic

D = date


def st(exam, today, cecs=(), renewed=(), required=14.0):  # type: ignore[no-untyped-def]
    return cyc.status(exam, today, list(cecs), set(renewed), required)


def test_expiry_is_two_years_after_the_exam_and_leap_days_fall_back_to_28_february():
    assert cyc.cycle(D(2025, 3, 14), 0) == cyc.Cycle(0, D(2025, 3, 14), D(2027, 3, 14))
    leap = D(2024, 2, 29)
    assert cyc.cycle(leap, 0).expires_on == D(2026, 2, 28)
    # Anchored on the exam: the next cycle ends on 29 February again, with no drift.
    assert cyc.cycle(leap, 1) == cyc.Cycle(1, D(2026, 3, 1), D(2028, 2, 29))
    assert cyc.cycle_on(leap, D(2026, 2, 28)).index == 0
    assert cyc.cycle_on(leap, D(2026, 3, 1)).index == 1
    assert cyc.cycle_on(leap, D(2031, 6, 1)) == cyc.Cycle(3, D(2030, 3, 1), D(2032, 2, 29))
    # An exam on 28 February in a leap year keeps its day.
    assert cyc.cycle(D(2022, 2, 28), 0).expires_on == D(2024, 2, 28)


def test_leap_day_exam_status_on_the_last_day_and_the_day_after():
    leap = D(2024, 2, 29)
    last = st(leap, D(2026, 2, 28))
    assert last.state is cyc.State.EXPIRING_SOON and last.days_left == 0
    after = st(leap, D(2026, 3, 1))
    assert after.state is cyc.State.EXPIRED and after.expired_on == D(2026, 2, 28)


def test_expiry_today_is_still_valid_and_cecs_earned_today_count():
    exam = D(2024, 6, 10)
    today = D(2026, 6, 10)
    s = st(exam, today, [(today, 14.0)])
    assert s.days_left == 0 and s.state is cyc.State.ELIGIBLE and s.cecs_needed == 0
    s = st(exam, today, [(today, 4.0)])
    assert s.state is cyc.State.EXPIRING_SOON and s.cecs_needed == 10


def test_expired_without_renewal():
    s = st(D(2022, 1, 5), D(2024, 1, 6), [(D(2023, 1, 1), 14.0)])
    assert s.state is cyc.State.EXPIRED and s.expired_on == D(2024, 1, 5)
    assert s.days_left is None
    # CECs earned before the lapse do not count in today's window.
    assert s.cecs_earned == 0
    # Several cycles later the lapse date is still the first unrenewed expiry.
    s = st(D(2018, 1, 5), D(2025, 5, 1), renewed=["2020-01-05"])
    assert s.state is cyc.State.EXPIRED and s.expired_on == D(2022, 1, 5)


def test_cecs_from_a_previous_cycle_do_not_count_after_a_renewal():
    exam = D(2022, 1, 5)
    ledger_rows = [(D(2023, 1, 1), 14.0), (D(2024, 1, 5), 2.0), (D(2024, 1, 6), 4.0)]
    s = st(exam, D(2024, 3, 1), ledger_rows, renewed=["2024-01-05"])
    assert s.state is cyc.State.CURRENT
    assert s.cycle == cyc.Cycle(1, D(2024, 1, 6), D(2026, 1, 5))
    assert s.cecs_earned == 4.0 and s.cecs_needed == 10.0
    # Before that cycle ended, the same ledger made the instructor eligible, then renewed.
    assert st(exam, D(2023, 6, 1), ledger_rows).state is cyc.State.ELIGIBLE
    renewed = st(exam, D(2023, 6, 1), ledger_rows, renewed=["2024-01-05"])
    assert renewed.state is cyc.State.RENEWED and renewed.next_expiry == D(2026, 1, 5)


def test_expiring_soon_threshold_and_unknown_exam_date():
    exam = D(2024, 6, 10)
    assert st(exam, D(2026, 3, 12)).state is cyc.State.EXPIRING_SOON  # 90 days left
    assert st(exam, D(2026, 3, 11)).state is cyc.State.CURRENT  # 91 days left
    unknown = st(None, D(2026, 1, 1), [(D(2020, 1, 1), 2.0)])
    assert unknown.state is cyc.State.UNKNOWN and unknown.cecs_earned == 2.0


# --------------------------------------------------------------------------- the ledger


@pytest.fixture
def course(env):  # type: ignore[no-untyped-def]
    return use_fixture_course(env.app)


def instructor_id(env, user: str = "learner-1") -> int:  # type: ignore[no-untyped-def]
    with env.app.app_context(), db.standalone_session() as s:
        return s.scalars(select(Instructor.id).where(Instructor.sub == user)).one()


def award(env, iid: int, module_id: str, when: datetime, exam: date | None = None) -> bool:  # type: ignore[no-untyped-def]
    with env.app.app_context(), db.standalone_session() as s:
        ok = ledger.award_module(
            s, instructor_id=iid, course_id="fixture-course", module_id=module_id,
            course_version="1", cecs=1.0, exam_date=exam, now=when,
        )
        s.commit()
        return ok


def test_concurrent_awards_credit_a_module_once(env, course):
    env.launch("learner-1")
    iid = instructor_id(env)
    results: list[bool] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    now = datetime.now(UTC)

    def run() -> None:
        try:
            barrier.wait()
            results.append(award(env, iid, "basics", now, D(2025, 1, 10)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with env.app.app_context(), db.standalone_session() as s:
        dump = s.execute(text("select id, cycle_key, awarded_on, awarded_at from cec_award")).all()
    assert sorted(results) == [False] * 7 + [True], (results, dump)
    assert env.count(CecAward) == 1


def test_ledger_is_append_only_and_a_module_counts_once_per_cycle(env, course):
    env.launch("learner-1")
    iid = instructor_id(env)
    exam = D(2022, 1, 5)
    assert award(env, iid, "basics", datetime(2023, 1, 1, tzinfo=UTC), exam)
    assert not award(env, iid, "basics", datetime(2023, 5, 1, tzinfo=UTC), exam)
    # Credited before the exam date was known: still the same cycle, so no second credit.
    assert award(env, iid, "practice", datetime(2023, 2, 1, tzinfo=UTC), None)
    assert not award(env, iid, "practice", datetime(2023, 3, 1, tzinfo=UTC), exam)
    # The next cycle may credit the module again.
    assert award(env, iid, "basics", datetime(2024, 2, 1, tzinfo=UTC), exam)
    assert env.count(CecAward) == 3
    with env.app.app_context(), db.standalone_session() as s:
        with pytest.raises(DBAPIError):
            s.execute(update(CecAward).values(cecs=14))
            s.flush()
        s.rollback()
        if s.get_bind().dialect.name == "sqlite":
            trig = s.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'")).all()
            assert ("cec_award_no_update",) in trig


# --------------------------------------------------------------------------- the pages


def visible(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(("member", "fee"), [
    ("true", "Renewal fee: €35.00 (price for current SPIN® members)"),
    ("false", "Renewal fee: €70.00"),
    (None, "Renewal fee: €70.00; €35.00 for current SPIN® members"),
])
def test_record_page_shows_expiry_days_left_and_the_fee_for_members_and_others(
    env, course, member, fee
):
    exam = (datetime.now(UTC).date() - timedelta(days=400)).isoformat()
    custom = {"certification_date": exam}
    if member:
        custom["spin_member"] = member
    b = env.browser()
    env.launch("learner-1", browser=b, custom=custom)
    page = b.get(env.tool.url + "/record/")
    text = visible(page.text)
    assert fee in text
    expiry = cyc.add_years(date.fromisoformat(exam), 2)
    assert (expiry - datetime.now(UTC).date()).days == 330
    assert "330 days" in text and "Current" in text
    assert "0 of 2 SPIN® CECs earned" in text and "Still needed: 2 SPIN® CECs" in text
    renewal = "https://en1.spinning.com/instructors/education/certification-renewal"
    assert f'href="{renewal}"' in page.text


def test_record_in_german_and_spanish_formats_dates_and_money_with_babel(env, course):
    b = env.browser()
    env.launch("learner-1", browser=b, locale="de-DE",
               custom={"certification_date": "2025-03-14", "spin_member": "false"})
    page = b.get(env.tool.url + "/record/")
    assert '<html lang="de">' in page.text
    assert "14. März 2025" in page.text and "14. März 2027" in page.text
    assert "70,00\xa0€" in page.text
    b2 = env.browser()
    env.launch("learner-2", browser=b2, locale="es-ES",
               custom={"certification_date": "2025-03-14", "spin_member": "true"})
    page = b2.get(env.tool.url + "/record/")
    assert "14 de marzo de 2027" in page.text and "35,00\xa0€" in page.text


def test_exam_date_is_entered_once_with_validation(env, course):
    b = env.browser()
    env.launch("learner-1", browser=b)
    page = b.get(env.tool.url + "/record/")
    assert "did not tell us" in page.text
    tomorrow = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    for value, message in [("", "Enter the date"), ("2025-02-30", "Enter a real date"),
                           (tomorrow, "cannot be in the future"), ("1989-12-31", "from 1990")]:
        bad = submit(b, page, "/record/certification-date", [("certification_date", value)])
        assert bad.status_code == 422 and message in bad.text, value
        assert 'aria-invalid="true"' in bad.text and 'role="alert"' in bad.text
    ok = submit(b, page, "/record/certification-date", [("certification_date", "2025-03-14")])
    assert ok.status_code == 200 and "did not tell us" not in ok.text
    assert "March 14, 2027" in ok.text
    with env.app.app_context(), db.standalone_session() as s:
        assert s.scalars(select(Instructor.certification_date)).first() == D(2025, 3, 14)


def test_a_corrected_exam_date_survives_relaunches_until_the_lms_sends_another(env, course):
    def exam_date() -> D:
        with env.app.app_context(), db.standalone_session() as s:
            return s.scalars(select(Instructor.certification_date)).one()

    b = env.browser()
    env.launch("learner-1", browser=b, custom={"certification_date": "2025-03-14"})
    assert exam_date() == D(2025, 3, 14)
    page = b.get(env.tool.url + "/record/")
    assert "Correct the exam date" in page.text
    ok = submit(b, page, "/record/certification-date", [("certification_date", "2025-04-02")])
    assert ok.status_code == 200 and "April 2, 2027" in ok.text
    # The LMS sends its (wrong) date on every launch: the learner's correction stays.
    env.launch("learner-1", browser=b, custom={"certification_date": "2025-03-14"})
    assert exam_date() == D(2025, 4, 2)
    assert "April 2, 2027" in b.get(env.tool.url + "/record/").text
    # A launch without the parameter changes nothing either.
    env.launch("learner-1", browser=b)
    assert exam_date() == D(2025, 4, 2)
    # The LMS's record changed (a new exam, a fixed profile field): that is news, it applies.
    env.launch("learner-1", browser=b, custom={"certification_date": "2025-05-20"})
    assert exam_date() == D(2025, 5, 20)


def _complete_course(env, course, b, custom=None):  # type: ignore[no-untyped-def]
    for module in course.modules:
        read_module(b, env.tool.url, course, module.id)
        page = b.get(env.tool.url + f"/course/module/{module.id}")
        result = take_quiz(b, course, module.id, page, 10)
        assert "result-pass" in result.text


def test_eligible_to_renew_then_renewal_recorded(env, course):
    exam = (datetime.now(UTC).date() - timedelta(days=100)).isoformat()
    b = env.browser()
    env.launch("learner-1", browser=b, custom={"certification_date": exam})
    _complete_course(env, course, b)
    page = b.get(env.tool.url + "/record/")
    text = visible(page.text)
    assert "Eligible to renew" in text and "You have all the CECs you need" in text
    assert text.count("Yes") >= 2  # transcript: both modules count in this cycle
    done = submit(b, page, "/record/renewal")
    assert "Renewal recorded" in visible(done.text)
    assert submit(b, done, "/language", [("language", "en")]).status_code == 200


def test_certificate_pdf_and_public_verification_until_revoked(env, course):
    from pypdf import PdfReader

    b = env.browser()
    env.launch("learner-1", browser=b, custom={"certification_date": "2025-03-14"})
    page = b.get(env.tool.url + "/record/certificate")
    assert "available once you have passed every module" in page.text
    _complete_course(env, course, b)
    page = b.get(env.tool.url + "/record/certificate")
    issued = submit(b, page, "/record/certificate", [])
    assert issued.status_code == 200
    code = re.search(r'id="verification-code">([0-9A-Z-]+)<', issued.text).group(1)  # type: ignore[union-attr]
    pdf_url = re.search(r'href="([^"]+certificate\.pdf[^"]*)"', issued.text).group(1)  # type: ignore[union-attr]
    pdf = b.get(env.tool.url + pdf_url.replace("&amp;", "&"))
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    pdf_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    for expected in ("Ana García", "2 SPIN® CECs", "Certificate of completion", code,
                     "March 14, 2027", "/verify/" + code):
        assert expected in pdf_text.replace("\n", " "), expected
    # The verification page is public and shows the minimum.
    public = env.browser()
    ok = public.get(env.tool.url + "/verify/" + code.lower().replace("-", ""))
    assert ok.status_code == 200 and "Valid certificate" in ok.text
    assert "Ana García" in ok.text and "ana@example.org" not in ok.text
    assert "2027" not in ok.text and "SPIN-RC" not in ok.text
    # Another learner cannot fetch this learner's PDF.
    b2 = env.browser()
    env.launch("learner-2", browser=b2)
    assert b2.get(env.tool.url + pdf_url.replace("&amp;", "&").split("?")[0]).status_code == 404
    # Revoking withdraws consent at once.
    revoked = submit(b, issued, "/revoke")
    assert "Withdrawn verification codes" in revoked.text
    gone = public.get(env.tool.url + "/verify/" + code)
    assert gone.status_code == 404 and "No valid certificate" in gone.text
    with env.app.app_context(), db.standalone_session() as s:
        cert = s.scalars(select(Certificate)).one()
        assert cert.revoked_at is not None and float(cert.cecs) == 2.0
    # A new certificate gets a new code.
    again = submit(b, b.get(env.tool.url + "/record/certificate"), "/record/certificate", [])
    new_code = re.search(r'id="verification-code">([0-9A-Z-]+)<', again.text).group(1)  # type: ignore[union-attr]
    assert new_code != code
    assert public.get(env.tool.url + "/verify/" + new_code).status_code == 200


def test_certificate_pdf_in_german(env, course):
    from pypdf import PdfReader

    b = env.browser()
    env.launch("learner-1", browser=b, locale="de-DE", custom={"certification_date": "2025-03-14"})
    _complete_course(env, course, b)
    issued = submit(b, b.get(env.tool.url + "/record/certificate"), "/record/certificate", [])
    pdf_url = re.search(r'href="([^"]+certificate\.pdf[^"]*)"', issued.text).group(1)  # type: ignore[union-attr]
    pdf = b.get(env.tool.url + pdf_url.replace("&amp;", "&"))
    pdf_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Ana García" in pdf_text and "14. März 2027" in pdf_text


def test_unknown_or_malformed_codes_are_404(env, course):
    public = env.browser()
    for code in ("0000-0000-0000-0000", "nope", "x" * 200):
        resp = public.get(env.tool.url + "/verify/" + code)
        assert resp.status_code == 404 and "No valid certificate" in resp.text
    lookup = public.get(env.tool.url + "/verify?code=abcd")
    assert lookup.status_code == 404


def test_record_pages_need_a_launch(env, course):
    anon = env.browser()
    for path in ("/record/", "/record/certificate", "/course/", "/course/module/basics"):
        assert anon.get(env.tool.url + path).status_code == 401


@pytest.mark.parametrize(("days_ago", "state", "detail"), [
    (0, "Current", None),
    (-10, "Expiring soon", "10 days"),
    (0, "Expiring soon", "Expires today"),
    (5, "Expired", "Expired on"),
])
def test_record_page_states(env, course, days_ago, state, detail):
    today = datetime.now(UTC).date()
    # An exam date whose expiry is `days_ago` days before today (negative: still ahead).
    if state == "Current":
        exam = today - timedelta(days=30)
    else:
        exam = cyc.add_years(today - timedelta(days=days_ago), -2)
    b = env.browser()
    env.launch("learner-1", browser=b, custom={"certification_date": exam.isoformat()})
    text = visible(b.get(env.tool.url + "/record/").text)
    assert f"Status {state}" in text, text[:2000]
    if detail:
        assert detail in text
