"""The course admin's settings as learners meet them, through real launches: module order and
offer, completion by required modules, pass mark per attempt, quiz cooldown, languages, course
dates, and who is graded. Also: course pages are read-only on GET.

Runs on the admin tests' 14-CEC course (basics 8, practice 6, extra 2 CECs; nothing required
by default because 16 CECs are offered).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from lti_tool import db
from lti_tool.identity.models import Instructor
from lti_tool.learning.models import QuizAttempt
from lti_tool.passback.models import OutboxScore
from lti_tool.record import CecAward, ledger
from tests.admin_helpers import admin_course, query, use_course
from tests.admin_helpers import form as admin_form
from tests.learning_helpers import (
    answers,
    link,
    read_module,
    start_quiz,
    submit,
    take_quiz,
)
from tests.lms import Browser
from tests.lms import claims as C

MS = "http://purl.imsglobal.org/vocab/lis/v2/membership/"


@pytest.fixture
def course(env):  # type: ignore[no-untyped-def]
    env.app.config["QUIZ_COOLDOWN_SECONDS"] = 0
    return use_course(env.app)


@pytest.fixture
def teacher(env, course) -> Browser:  # type: ignore[no-untyped-def]
    b = env.browser()
    env.launch("teacher-1", browser=b)
    return b


def configure(env, teacher: Browser, **changes: Any) -> None:  # type: ignore[no-untyped-def]
    page = teacher.get(env.tool.url + "/admin/modules")
    f = admin_form(page, "/admin/modules")
    saved = teacher.post(f.action, f.data(**changes))
    assert saved.status_code == 200 and "done=saved" in saved.url, saved.text[:800]


def visible(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def learner(env, user: str = "learner-1", **kw: Any) -> tuple[Browser, Any]:  # type: ignore[no-untyped-def]
    b = env.browser()
    return b, env.launch(user, browser=b, **kw)


def instructor_id(env, sub: str) -> int:  # type: ignore[no-untyped-def]
    return int(query(env.app, lambda s: s.scalars(
        select(Instructor.id).where(Instructor.sub == sub)).one()))


def attempts(env) -> list[QuizAttempt]:  # type: ignore[no-untyped-def]
    return list(query(env.app, lambda s: s.scalars(
        select(QuizAttempt).order_by(QuizAttempt.id)).all()))


# ----------------------------------------------------------------------------- modules


def test_module_order_and_offer_shape_home_navigation_continue_and_quizzes(env, course, teacher):
    configure(env, teacher, **{"position-practice": "1", "position-basics": "2",
                               "offered-extra": None})
    b, home = learner(env)
    text = visible(home.text)
    assert "Module 1: Practice" in text and "Module 2: Basics" in text
    assert "Basics +" not in text and "/course/module/extra" not in home.text
    assert "Modules passed 0 of 2" in text
    assert "Start: Module 1, lesson 1" in text
    assert "/course/module/practice/lesson/drills" in link(home, "/course/module/practice/lesson")
    # Navigation follows the configured order across modules.
    drills = b.get(env.tool.url + "/course/module/practice/lesson/drills")
    assert 'rel="prev"' not in drills.text
    assert "Next: Module 1, quiz" in visible(drills.text)
    welcome = b.get(env.tool.url + "/course/module/basics/lesson/welcome")
    assert "Module 2, lesson 1 of 2" in visible(welcome.text)
    assert "Previous: Module 1, quiz" in visible(welcome.text)
    assert re.search(r'class="pager-prev" rel="prev" href="[^"]*/course/module/practice[?#]',
                     welcome.text)
    # Finishing the first module's quiz continues with the second module.
    read_module(b, env.tool.url, course, "practice")
    result = take_quiz(b, course, "practice", b.get(env.tool.url + "/course/module/practice"), 10)
    assert "Continue: Module 2, lesson 1" in visible(result.text)
    assert "Quiz result" in result.text and ">Module 1<" in result.text
    assert "Continue: Module 2, lesson 1" in visible(b.get(env.tool.url + "/course/").text)


def test_a_module_not_offered_disappears_and_is_a_clean_404(env, course, teacher):
    b, _ = learner(env)
    # While offered, the learner passes it: 2 CECs.
    read_module(b, env.tool.url, course, "extra")
    passed = take_quiz(b, course, "extra", b.get(env.tool.url + "/course/module/extra"), 10)
    assert "Passed" in passed.text
    result_url = passed.url
    configure(env, teacher, **{"offered-extra": None})

    home = b.get(env.tool.url + "/course/")
    assert "Basics +" not in home.text and "/course/module/extra" not in home.text
    assert "2 of 14 SPIN® CECs earned" in visible(home.text)  # completed work is kept
    for path in ("/course/module/extra", "/course/module/extra/lesson/welcome"):
        page = b.get(env.tool.url + path)
        assert page.status_code == 404, path
        assert "Page not found" in page.text
    assert b.get(result_url).status_code == 404
    [attempt] = attempts(env)
    assert b.get(env.tool.url + f"/course/quiz/{attempt.id}").status_code == 404
    mod = b.get(env.tool.url + "/course/module/basics")
    fields = admin_form(mod, "/language").data()  # the learner's valid CSRF and session token
    for path in ("/course/module/extra/quiz", "/course/module/extra/lesson/welcome/done"):
        resp = b.request("POST", env.tool.url + path, data=fields, initiator=mod.url)
        assert resp.status_code == 404, path
    assert len(attempts(env)) == 1
    [award] = query(env.app, lambda s: s.scalars(select(CecAward)).all())
    assert award.module_id == "extra"


def test_completion_needs_every_required_module(env, teacher):
    # basics 8 + practice 6 + extra 8: practice and extra alone make 14 CECs.
    base = admin_course()
    basics, practice, extra = base.modules
    course = use_course(env.app, replace(base, modules=(basics, practice, replace(extra, cecs=8))))
    configure(env, teacher, **{"required-basics": "on"})
    b, _ = learner(env)
    iid = instructor_id(env, "learner-1")

    def award(s, module_id: str, cecs: float) -> None:  # type: ignore[no-untyped-def]
        ledger.award_module(s, instructor_id=iid, course_id=course.id, module_id=module_id,
                            course_version=course.version, cecs=cecs, exam_date=None,
                            now=db.utcnow())
        s.commit()

    query(env.app, lambda s: award(s, "practice", 6))
    query(env.app, lambda s: award(s, "extra", 8))
    home = visible(b.get(env.tool.url + "/course/").text)
    assert "14 of 14 SPIN® CECs earned" in home
    assert "You have completed the course" not in home
    assert "Start: Module 1, lesson 1" in home or "Continue: Module 1" in home

    read_module(b, env.tool.url, course, "basics")
    take_quiz(b, course, "basics", b.get(env.tool.url + "/course/module/basics"), 10)
    home = visible(b.get(env.tool.url + "/course/").text)
    assert "You have completed the course" in home
    scores = query(env.app, lambda s: s.scalars(
        select(OutboxScore).where(OutboxScore.instructor_id == iid)
        .order_by(OutboxScore.id)).all())
    assert scores[-1].activity_progress == "Completed"


# ----------------------------------------------------------------------------- pass mark


def test_a_changed_pass_mark_never_changes_a_started_or_submitted_attempt(env, course, teacher):
    b, _ = learner(env)
    read_module(b, env.tool.url, course, "basics")
    # Attempt A starts under the default pass mark of 80 %.
    quiz_a = start_quiz(b, b.get(env.tool.url + "/course/module/basics"), "basics")
    assert "You need 80% to pass" in visible(quiz_a.text)
    configure(env, teacher, pass_mark_percent="90")

    # Still graded with 80 %: 8 of 10 passes.
    result_a = submit(b, quiz_a, "/course/quiz/", answers(course, "basics", quiz_a, 8))
    assert "Passed" in result_a.text and "The pass mark is 80%" in visible(result_a.text)
    # Attempt B starts under 90 %: 8 of 10 fails.
    module = b.get(env.tool.url + "/course/module/basics")
    assert "You pass with 90%" in visible(module.text)
    quiz_b = start_quiz(b, module, "basics")
    assert "You need 90% to pass" in visible(quiz_b.text)
    result_b = submit(b, quiz_b, "/course/quiz/", answers(course, "basics", quiz_b, 8))
    assert "Not passed yet" in result_b.text and "The pass mark is 90%" in visible(result_b.text)
    a, att_b = attempts(env)
    assert (a.pass_mark_percent, a.config_version, a.passed) == (80, 0, True)
    assert (att_b.pass_mark_percent, att_b.config_version, att_b.passed) == (90, 1, False)

    # Lowering it afterwards changes neither result.
    configure(env, teacher, pass_mark_percent="70")
    assert "Not passed yet" in b.get(result_b.url).text
    assert "The pass mark is 80%" in visible(b.get(result_a.url).text)
    assert [(x.passed, x.correct) for x in attempts(env)] == [(True, 8), (False, 8)]
    awards = query(env.app, lambda s: s.scalars(select(CecAward)).all())
    assert [(w.module_id, w.attempt_id) for w in awards] == [("basics", a.id)]


# ----------------------------------------------------------------------------- cooldown


def test_the_cooldown_comes_from_the_course_settings(env, course, teacher):
    b, _ = learner(env)
    read_module(b, env.tool.url, course, "practice")
    module = b.get(env.tool.url + "/course/module/practice")
    # No settings saved: the operator's QUIZ_COOLDOWN_SECONDS (0 here) applies.
    failed = take_quiz(b, course, "practice", module, 0)
    assert "You can start a new attempt in" not in failed.text
    failed = take_quiz(b, course, "practice", failed, 0)
    assert len(attempts(env)) == 2

    configure(env, teacher, cooldown_minutes="5")
    result = b.get(failed.url)
    seconds = re.search(r"You can start a new attempt in (\d+) seconds", result.text)
    assert seconds and 250 < int(seconds.group(1)) <= 300, result.text[:300]
    refused = start_quiz(b, result, "practice")
    assert refused.status_code == 429
    assert len(attempts(env)) == 2

    configure(env, teacher, cooldown_minutes="0")
    again = start_quiz(b, b.get(failed.url), "practice")
    assert again.status_code == 200 and "/course/quiz/" in again.url
    assert len(attempts(env)) == 3


# ----------------------------------------------------------------------------- languages


def test_learners_choose_only_among_the_course_languages(env, course, teacher):
    configure(env, teacher, languages=["de", "es"], course_language="es")
    # The teacher configuring the course keeps every language.
    admin_page = teacher.get(env.tool.url + "/admin/")
    assert '<html lang="en">' in admin_page.text and 'value="en"' in admin_page.text

    # A launch locale outside the set falls back to the course language.
    b, home = learner(env, locale="en-US")
    assert '<html lang="es">' in home.text
    switcher = admin_form(home, "/language")
    assert 'option value="en"' not in home.text
    assert 'option value="de"' in home.text and 'option value="es"' in home.text
    refused = b.post(switcher.action, switcher.data(language="en"))
    assert refused.status_code == 400
    assert '<html lang="es">' in b.get(env.tool.url + "/course/").text
    switched = b.post(switcher.action, switcher.data(language="de"))
    assert switched.status_code == 200 and '<html lang="de">' in switched.text
    # An allowed launch locale is kept.
    _, home2 = learner(env, "learner-2", locale="de-AT")
    assert '<html lang="de">' in home2.text

    # One language left: there is nothing to switch.
    configure(env, teacher, languages=["es"], course_language="es")
    only = b.get(env.tool.url + "/course/")
    assert '<html lang="es">' in only.text and "language-switcher" not in only.text


# ----------------------------------------------------------------------------- dates


def test_before_the_start_and_after_the_end_learners_see_that_the_course_is_closed(
    env, course, teacher
):
    today = datetime.now(UTC).date()
    configure(env, teacher, starts_on=(today + timedelta(days=1)).isoformat())
    b, home = learner(env)
    assert home.status_code == 403
    assert "The course is not open" in home.text
    assert "This course opens on" in visible(home.text)
    for path in ("/course/module/basics", "/course/module/basics/lesson/welcome"):
        assert b.get(env.tool.url + path).status_code == 403
    assert query(env.app, lambda s: s.scalars(select(QuizAttempt)).all()) == []
    # The learner's own record stays reachable; the page is in the learner's language.
    assert b.get(env.tool.url + "/record/").status_code == 200
    _, german = learner(env, "learner-2", locale="de-DE")
    assert german.status_code == 403 and '<html lang="de">' in german.text
    # Course admins still get in.
    assert teacher.get(env.tool.url + "/course/").status_code == 200

    configure(env, teacher, starts_on="", ends_on=(today - timedelta(days=1)).isoformat())
    closed = b.get(env.tool.url + "/course/")
    assert closed.status_code == 403 and "This course closed on" in visible(closed.text)
    configure(env, teacher, ends_on=today.isoformat())  # the end date is still open
    assert b.get(env.tool.url + "/course/").status_code == 200


# ----------------------------------------------------------------------------- gradebook


def test_teaching_assistants_the_course_allows_as_admins_are_not_graded(env, course, teacher):
    env.lms.add_user("ta-1", name="Tom Assistant")
    env.lms.enrol(env.context_id, "ta-1",
                  roles=[C.ROLE_INSTRUCTOR, MS + "Instructor#TeachingAssistant"])
    ta, _ = learner(env, "ta-1")
    iid = instructor_id(env, "ta-1")

    def scores() -> int:
        return len(query(env.app, lambda s: s.scalars(
            select(OutboxScore.id).where(OutboxScore.instructor_id == iid)).all()))

    assert scores() == 1  # not allowed to administer: a learner, graded ("Started")
    configure(env, teacher, allow_assistants="on")
    read_module(ta, env.tool.url, course, "practice")
    take_quiz(ta, course, "practice", ta.get(env.tool.url + "/course/module/practice"), 10)
    assert scores() == 1


def test_the_course_deep_link_placeholder_is_gone(env, course, teacher):
    assert "course.deep_link" not in {r.endpoint for r in env.app.url_map.iter_rules()}
    assert teacher.get(env.tool.url + "/course/deep-link").status_code == 404


# ----------------------------------------------------------------------------- read-only GET


def test_course_pages_write_nothing_on_get_once_the_link_is_known(env, course):
    env.app.config["PASSBACK_DELIVERY"] = "off"  # no background writes during the count
    b, _ = learner(env)
    writes: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    engine = env.app.extensions["lti_tool.engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        for path in ("/course/", "/course/module/basics", "/course/", "/record/"):
            assert b.get(env.tool.url + path).status_code == 200
        assert writes == []
        # A new link is remembered (and reported "Started") on the first arrival from it.
        env.launch("learner-1", browser=b, resource_link_id="rl-2")
        assert any("learner_link" in w for w in writes)
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_worker_holding_an_older_set_up_applies_a_new_one_saved_elsewhere(env, course):
    """Launches take the set-up from memory while the context row's settings_version says it
    is current: a save made through another worker (here another app on the same database)
    must reach this worker's very next launch."""
    from lti_tool import create_app
    from lti_tool.admin import settings as cfg
    from lti_tool.identity.models import LmsContext

    first = env.launch("learner-1")
    assert first.status_code == 200  # this worker now holds version 0 of the set-up
    other_worker = create_app({**env.app.config, "AUTO_MIGRATE": False})
    use_course(other_worker, course)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    with other_worker.app_context(), db.standalone_session() as s:
        ctx = s.scalars(select(LmsContext)).one()
        current = cfg.load(s, ctx.id, course)
        version = cfg.save(s, context_pk=ctx.id, course=course,
                           new=replace(current, ends_on=yesterday),
                           expected_version=current.version, actor_id=None)
        s.commit()
    assert version == 1
    again = env.launch("learner-1")
    assert again.status_code == 403 and "This course closed on" in visible(again.text)
    # And the worker keeps answering from memory while nothing changes.
    with env.app.test_request_context("/"), db.standalone_session() as s:
        held = cfg.load(s, ctx.id, course, known_version=1)
        assert held.ends_on == yesterday
        assert cfg.load(s, ctx.id, course, known_version=1) is held
