"""The learner journey through real launches: progress, resume, quizzes, awards, gradebook.

Runs on the small fixture course (2 modules × 1 CEC, 15 questions each) with no quiz cooldown,
unless a test says otherwise. The browser E2E over the real course is in tests/browser/.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import select

from lti_tool import db
from lti_tool.learning.models import LessonProgress, QuizAttempt
from lti_tool.passback.models import OutboxScore
from lti_tool.record.models import CecAward
from tests.conftest import landed_url
from tests.learning_helpers import (
    answers,
    drawn_question_ids,
    form,
    read_module,
    start_quiz,
    submit,
    take_quiz,
    use_fixture_course,
)


@pytest.fixture
def course(env):  # type: ignore[no-untyped-def]
    return use_fixture_course(env.app)


def rows(env, model, *where):  # type: ignore[no-untyped-def]
    with env.app.app_context(), db.standalone_session() as s:
        return list(s.scalars(select(model).where(*where)))


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_home_lists_modules_with_state_cecs_progress_time_and_start(env, course):
    home = env.launch("learner-1")
    assert home.status_code == 200
    text = visible_text(home.text)
    assert "0 of 2 SPIN® CECs earned" in text
    assert '<progress class="cec-bar" max="2.0" value="0.0"' in home.text
    assert "Module 1: Basics" in text and "Module 2: Practice" in text
    assert text.count("Not started") == 2
    assert "Estimated time left" in text
    assert "Start: Module 1, lesson 1" in text


def test_lessons_are_saved_server_side_and_continue_resumes_exactly(env, course):
    b = env.browser()
    env.launch("learner-1", browser=b)
    base = env.tool.url
    page = b.get(f"{base}/course/module/basics/lesson/welcome")
    assert 'rel="next"' in page.text and "Next: Module 1, lesson 2" in visible_text(page.text)
    assert "Not read yet" in page.text
    # Opening is not reading: home resumes at the opened lesson.
    home = b.get(f"{base}/course/")
    assert "Continue: Module 1, lesson 1" in visible_text(home.text)
    done = submit(b, page, "/lesson/welcome/done")
    assert done.url.split("?")[0].endswith("/course/module/basics/lesson/safety")
    assert "Previous: Module 1, lesson 1" in visible_text(done.text)
    # Read to the end by scrolling: the page script posts quietly (204).
    f = form(done, "/lesson/safety/done")
    quiet = b.request("POST", f.action, data={**f.fields, "via": "script"}, initiator=done.url)
    assert quiet.status_code == 204
    [row] = rows(env, LessonProgress, LessonProgress.lesson_id == "safety")
    assert row.completed_at is not None and row.completed_version == course.version
    home = b.get(f"{base}/course/")
    assert "Continue: Module 1, quiz" in visible_text(home.text)
    assert "In progress" in home.text
    # Jumping ahead: the place left off is the last lesson opened.
    b.get(f"{base}/course/module/practice/lesson/drills")
    assert "Continue: Module 2, lesson 1" in visible_text(b.get(f"{base}/course/").text)
    # A fresh launch (new session) resumes at the same place.
    home2 = env.launch("learner-1")
    assert "Continue: Module 2, lesson 1" in visible_text(home2.text)


def test_quiz_stays_locked_until_every_lesson_is_read(env, course):
    b = env.browser()
    env.launch("learner-1", browser=b)
    mod = b.get(env.tool.url + "/course/module/basics")
    assert 'id="quiz-locked"' in mod.text and "start-quiz" not in mod.text
    # Forcing the start anyway is refused and creates nothing.
    forced = b.request("POST", env.tool.url + "/course/module/basics/quiz",
                       data=form(mod, "/language").fields, initiator=mod.url)
    assert forced.status_code == 409
    assert rows(env, QuizAttempt) == []


def test_quiz_draw_carries_no_answer_key_and_fail_then_pass_credits_once(env, course):
    b = env.browser()
    env.launch("learner-1", browser=b)
    base = env.tool.url
    read_module(b, base, course, "basics")
    mod = b.get(base + "/course/module/basics")
    quiz_page = start_quiz(b, mod, "basics")
    drawn = drawn_question_ids(quiz_page)
    assert len(drawn) == 10 and len(set(drawn)) == 10
    module = course.module("basics")
    assert module is not None
    # Nothing in the page tells right from wrong: no feedback text, no key.
    for q in module.questions:
        for c in q.choices:
            for lang_text in c.feedback.values():
                assert lang_text not in quiz_page.text
    assert "correct" not in quiz_page.text.lower().replace("correctly", "")
    # Choices are shuffled per attempt and the order is stored with it.
    [attempt] = rows(env, QuizAttempt)
    assert attempt.course_version == course.version and attempt.submitted_at is None
    assert set(attempt.choice_order) == set(drawn)

    failed = submit(b, quiz_page, "/course/quiz/", answers(course, "basics", quiz_page, 7))
    assert failed.status_code == 200 and "/result" in failed.url
    text = visible_text(failed.text)
    assert "Not passed yet" in text and "7 of 10" in text and "70%" in text
    assert "Review the lesson:" in text
    assert rows(env, CecAward) == []

    # A retake is a fresh draw: the 5 questions not seen before are all in it.
    retake = start_quiz(b, failed, "basics")
    second = drawn_question_ids(retake)
    unseen = {q.id for q in module.questions} - set(drawn)
    assert unseen <= set(second)
    passed = submit(b, retake, "/course/quiz/", answers(course, "basics", retake, 8))
    assert "Passed" in passed.text and "1 SPIN® CEC credited" in visible_text(passed.text)
    [award] = rows(env, CecAward)
    assert (award.module_id, float(award.cecs), award.course_version) == (
        "basics", 1.0, course.version)

    # A worse retake changes nothing: the best result counts and the pass is kept.
    worse = take_quiz(b, course, "basics", passed, 0)
    assert "Not passed yet" in worse.text
    assert "Best result so far: 80%" in visible_text(worse.text)
    assert len(rows(env, CecAward)) == 1
    home = b.get(base + "/course/")
    assert "1 of 2 SPIN® CECs earned" in visible_text(home.text)
    assert "Passed" in home.text


def test_double_submission_and_replayed_form_are_409_and_change_nothing(env, course):
    b = env.browser()
    env.launch("learner-1", browser=b)
    read_module(b, env.tool.url, course, "basics")
    quiz_page = start_quiz(b, b.get(env.tool.url + "/course/module/basics"), "basics")
    f = form(quiz_page, "/course/quiz/")
    data = list(f.fields.items()) + answers(course, "basics", quiz_page, 10)
    first = b.request("POST", f.action, data=data, initiator=quiz_page.url)  # type: ignore[arg-type]
    assert first.status_code == 200
    before = [(a.id, a.submitted_at, a.correct) for a in rows(env, QuizAttempt)]
    awards = len(rows(env, CecAward))
    again = b.request("POST", f.action, data=data, initiator=quiz_page.url)  # type: ignore[arg-type]
    assert again.status_code == 409
    assert "already submitted" in again.text
    # The same form with other answers (a replay) is refused the same way.
    replay = b.request("POST", f.action, data=list(f.fields.items())
                       + answers(course, "basics", quiz_page, 0),  # type: ignore[arg-type]
                       initiator=quiz_page.url)
    assert replay.status_code == 409
    assert [(a.id, a.submitted_at, a.correct) for a in rows(env, QuizAttempt)] == before
    assert len(rows(env, CecAward)) == awards == 1


def test_concurrent_submissions_of_one_attempt_grade_once(env, course):
    b = env.browser()
    env.launch("learner-1", browser=b)
    read_module(b, env.tool.url, course, "basics")
    quiz_page = start_quiz(b, b.get(env.tool.url + "/course/module/basics"), "basics")
    f = form(quiz_page, "/course/quiz/")
    data = list(f.fields.items()) + answers(course, "basics", quiz_page, 10)
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        barrier.wait()
        r = b.session.post(f.action, data=data, allow_redirects=False,
                           headers={"Cookie": b.cookies.header_for(f.action, _ctx(f.action))})
        codes.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [303] + [409] * 5, codes
    assert len(rows(env, CecAward)) == 1
    assert len([a for a in rows(env, QuizAttempt) if a.submitted_at]) == 1


def _ctx(url: str):  # type: ignore[no-untyped-def]
    from tests.lms.cookies import CookieContext, site_of

    return CookieContext(site_of(url), site_of(url), True, True, "POST")


def test_another_learners_attempt_is_404_and_a_forged_token_400(env, course):
    b1 = env.browser()
    env.launch("learner-1", browser=b1)
    read_module(b1, env.tool.url, course, "basics")
    quiz_page = start_quiz(b1, b1.get(env.tool.url + "/course/module/basics"), "basics")
    f = form(quiz_page, "/course/quiz/")
    b2 = env.browser()
    home2 = env.launch("learner-2", browser=b2)
    other = b2.get(f.action)
    assert other.status_code == 404
    token_and_csrf = {k: v for k, v in form(home2, "/language").fields.items()
                      if k in ("csrf_token", "lt")}
    steal = b2.request("POST", f.action, initiator=other.url, data=[  # type: ignore[arg-type]
        *token_and_csrf.items(), ("attempt_token", f.fields["attempt_token"]),
        *answers(course, "basics", quiz_page, 10)])
    assert steal.status_code == 404
    assert b2.get(f.action.split("?")[0] + "/result").status_code == 404
    forged = b1.request("POST", f.action, initiator=quiz_page.url, data=[  # type: ignore[arg-type]
        *{**f.fields, "attempt_token": "0" * 64}.items(),
        *answers(course, "basics", quiz_page, 10)])
    assert forged.status_code == 400
    [attempt] = rows(env, QuizAttempt)
    assert attempt.submitted_at is None and rows(env, CecAward) == []


def test_unanswered_questions_are_reported_and_the_attempt_stays_open(env, course):
    b = env.browser()
    env.launch("learner-1", browser=b)
    read_module(b, env.tool.url, course, "basics")
    quiz_page = start_quiz(b, b.get(env.tool.url + "/course/module/basics"), "basics")
    partial = answers(course, "basics", quiz_page, 10)[:5]
    resp = submit(b, quiz_page, "/course/quiz/", partial)
    assert resp.status_code == 422
    assert 'role="alert"' in resp.text and "Some questions have no answer" in resp.text
    assert resp.text.count('aria-invalid') == 0 and resp.text.count('class="field-error"') >= 1
    assert resp.text.count(" checked") == len(partial)  # answers given are kept
    [attempt] = rows(env, QuizAttempt)
    assert attempt.submitted_at is None


def test_cooldown_between_attempts(env):
    course = use_fixture_course(env.app, cooldown=60)
    b = env.browser()
    env.launch("learner-1", browser=b)
    read_module(b, env.tool.url, course, "basics")
    result = take_quiz(b, course, "basics", b.get(env.tool.url + "/course/module/basics"), 0)
    assert "You can start a new attempt in" in result.text
    again = start_quiz(b, result, "basics")
    assert again.status_code == 429
    assert len(rows(env, QuizAttempt)) == 1


def _scores(env, link_id: str = "rl-1"):  # type: ignore[no-untyped-def]
    from lti_tool.identity.models import ResourceLink

    with env.app.app_context(), db.standalone_session() as s:
        link = s.scalars(select(ResourceLink).where(ResourceLink.resource_link_id == link_id)).one()
        out = s.scalars(select(OutboxScore).where(OutboxScore.resource_link_pk == link.id)
                        .order_by(OutboxScore.id))
        return [(o.activity_progress, o.grading_progress, o.score_given, o.score_maximum)
                for o in out]


def test_whole_course_reaches_all_cecs_and_the_gradebook_follows_the_rules(env, course):
    b = env.browser()
    home = env.launch("learner-1", browser=b)
    assert _scores(env) == [("Started", "Pending", None, 2.0)]
    read_module(b, env.tool.url, course, "basics")
    assert _scores(env)[-1] == ("InProgress", "Pending", None, 2.0)
    take_quiz(b, course, "basics", b.get(env.tool.url + "/course/module/basics"), 10)
    assert _scores(env)[-1] == ("InProgress", "FullyGraded", 1.0, 2.0)
    read_module(b, env.tool.url, course, "practice")
    take_quiz(b, course, "practice", b.get(env.tool.url + "/course/module/practice"), 9)
    assert _scores(env)[-1] == ("Completed", "FullyGraded", 2.0, 2.0)
    home = b.get(env.tool.url + "/course/")
    text = visible_text(home.text)
    assert "2 of 2 SPIN® CECs earned" in text and "You have completed the course" in text
    assert "Continue:" not in text
    awards = rows(env, CecAward)
    assert sorted(a.module_id for a in awards) == ["basics", "practice"]
    # Grade passback delivers after each commit: the LMS ends up with the full score.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        final = [sc.body for sc in env.lms.scores if sc.user_id == "learner-1"
                 and sc.body.get("activityProgress") == "Completed"]
        if final:
            break
        time.sleep(0.1)
    assert final and final[-1]["scoreGiven"] == 2.0
    assert final[-1]["gradingProgress"] == "FullyGraded"


def test_a_link_placing_one_module_is_scored_out_of_that_module(env, course):
    b = env.browser()
    page = env.launch("learner-1", browser=b, resource_link_id="rl-mod",
                      custom={"module": "practice"})
    assert landed_url(page).split("?")[0].endswith("/course/module/practice")
    assert _scores(env, "rl-mod") == [("Started", "Pending", None, 1.0)]
    read_module(b, env.tool.url, course, "practice")
    assert _scores(env, "rl-mod")[-1] == ("InProgress", "Pending", None, 1.0)
    take_quiz(b, course, "practice", b.get(env.tool.url + "/course/module/practice"), 10)
    assert _scores(env, "rl-mod")[-1] == ("Completed", "FullyGraded", 1.0, 1.0)


def test_course_admins_preview_without_gradebook_entries(env, course):
    b = env.browser()
    env.launch("teacher-1", browser=b)
    read_module(b, env.tool.url, course, "basics")
    assert _scores(env) == []


def test_a_content_edit_never_changes_completed_work(env, tmp_path):
    import shutil

    from tests.learning_helpers import FIXTURE_COURSE

    folder = tmp_path / "course"
    shutil.copytree(FIXTURE_COURSE, folder)
    env.app.config["COURSE_CONTENT_DIR"] = str(folder)
    env.app.config["QUIZ_COOLDOWN_SECONDS"] = 0
    env.app.extensions.pop("lti_tool.course", None)
    from lti_tool.content import get_course

    with env.app.app_context():
        course = get_course()
    b = env.browser()
    env.launch("learner-1", browser=b)
    read_module(b, env.tool.url, course, "basics")
    take_quiz(b, course, "basics", b.get(env.tool.url + "/course/module/basics"), 10)
    # The editors publish version 2 with a new lesson in the passed module.
    yaml = folder / "course.yaml"
    yaml.write_text(yaml.read_text().replace('version: "1"', 'version: "2"'))
    for lang in ("en", "de", "es"):
        shutil.copy(folder / lang / "basics" / "safety.md", folder / lang / "basics" / "extra.md")
        md = folder / lang / "basics" / "extra.md"
        md.write_text(md.read_text().replace("id: safety", "id: extra"))
    mod = folder / "modules" / "basics.yaml"
    mod.write_text(mod.read_text() + "  - extra\n")
    env.app.extensions.pop("lti_tool.course", None)
    with env.app.app_context():
        v2 = get_course()
    assert v2.version == "2" and len(v2.module("basics").lessons) == 3  # type: ignore[union-attr]
    home = visible_text(b.get(env.tool.url + "/course/").text)
    assert "1 of 2 SPIN® CECs earned" in home  # the credit stays
    [award] = rows(env, CecAward)
    assert award.course_version == "1"
    [attempt] = rows(env, QuizAttempt)
    assert attempt.course_version == "1" and attempt.passed
    result = b.get(env.tool.url + f"/course/quiz/{attempt.id}/result")
    assert result.status_code == 200 and "Passed" in result.text
    # New work is recorded under the new version.
    read_module(b, env.tool.url, v2, "practice")
    take_quiz(b, v2, "practice", b.get(env.tool.url + "/course/module/practice"), 10)
    versions = {a.module_id: a.course_version for a in rows(env, CecAward)}
    assert versions == {"basics": "1", "practice": "2"}
