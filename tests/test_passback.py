"""CEC grade passback (AGS 2.0) against the strict test LMS over HTTP on 127.0.0.1.

Line items (coupled, found by resourceLinkId + tag through paging, created), score bodies,
scopes, tokens (one per registration and scope set, shared by processes, renewed on 401),
the admin status and resend actions, and the outbox rules (only the newest pending score is
sent, nothing is sent after a rollback, a relaunch never blanks a score).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from lti_tool import create_app, db
from lti_tool.lti.models import Registration
from lti_tool.passback import (
    AccessToken,
    LineItemLink,
    enqueue_score,
    resend_context,
    resend_learner,
    status,
)
from lti_tool.passback.http import parse_retry_after, scores_url
from lti_tool.passback.models import HELD
from lti_tool.passback.sender import wait_idle
from lti_tool.passback.worker import Worker
from lti_tool.sealing import unseal
from tests.lms import claims as C
from tests.passback_helpers import (
    MAX,
    add_learners,
    assert_clean_history,
    award,
    fast,
    launch,
    pending,
    rows,
    settle,
)


def context_pk(env) -> int:  # type: ignore[no-untyped-def]
    from lti_tool.identity.models import LmsContext

    with env.app.app_context(), db.standalone_session() as s:
        return s.scalars(select(LmsContext.id)).one()


def only_lineitem(lms):  # type: ignore[no-untyped-def]
    items = list(lms.lineitems.values())
    assert len(items) == 1, [li.to_json() for li in items]
    return items[0]


# ------------------------------------------------------------------------------ line items


def test_scores_reach_the_coupled_line_item_as_points(env):
    fast(env.app)
    iid, rl = launch(env, lineitem=True)
    li = only_lineitem(env.lms)
    award(env, iid, rl, 5)
    award(env, iid, rl, MAX)
    settle(env.app)
    result = env.lms.result(li, "learner-1")
    assert result is not None
    # Points, not a fraction: the platform rescales 14/14 to its own 100-point column.
    assert (result.score_given, result.score_maximum, result.result_score) == (14, 14, 100)
    assert (result.activity_progress, result.grading_progress) == ("Completed", "FullyGraded")
    assert result.comment and "14" in result.comment
    body = env.lms.scores[-1].body
    assert body["userId"] == "learner-1"
    assert body["timestamp"].endswith("+00:00") and "." in body["timestamp"]
    assert env.lms.token_requests == 1
    assert not any(kind == "lineitems" for kind, *_ in env.lms.service_requests)
    assert_clean_history(env.lms)
    states = [r.state for r in rows(env.app)]
    assert states[-1] == "sent" and states[0] in ("sent", "superseded")


def test_line_item_is_created_once_for_the_link_in_the_course_language(env):
    fast(env.app)
    a = launch(env, "learner-1", locale="es-MX")
    b = launch(env, "learner-2")
    for iid, rl in (a, b):
        award(env, iid, rl, 3)
    settle(env.app)
    li = only_lineitem(env.lms)
    assert li.score_maximum == MAX
    assert li.resource_link_id == "rl-1"
    assert li.tag == "spin-cecs"
    assert li.resource_id
    assert "CEC" in li.label
    assert env.lms.result(li, "learner-1").score_given == 3
    assert env.lms.result(li, "learner-2").score_given == 3
    with env.app.app_context(), db.standalone_session() as s:
        link = s.scalars(select(LineItemLink)).one()
        assert (link.lineitem_url, link.origin) == (li.url, "created")
    # Cached: later scores go straight to the column.
    before = len(env.lms.service_requests)
    award(env, *a, 4)
    settle(env.app)
    assert [k for k, *_ in env.lms.service_requests[before:]] == ["scores"]
    assert env.lms.token_requests == 1


def test_line_item_is_found_by_resource_link_and_tag_across_pages(env):
    fast(env.app)
    env.lms.add_resource_link("rl-1", env.context_id, env.client_id)
    env.lms.lineitems_page_size = 5
    for i in range(12):
        env.lms.add_lineitem(env.context_id, env.client_id, f"Quiz {i}", 10, "rl-1", tag=f"q{i}")
    ours = env.lms.add_lineitem(env.context_id, env.client_id, "CECs", 14, "rl-1", tag="spin-cecs")
    iid, rl = launch(env)  # several line items coupled: the launch names none (D2L rule)
    award(env, iid, rl, 7)
    settle(env.app)
    assert env.lms.result(ours, "learner-1").score_given == 7
    gets = [r for r in env.lms.service_requests if r[:2] == ("lineitems", "GET")]
    assert len(gets) == 3  # 13 items, 5 a page
    assert not any(r[:2] == ("lineitems", "POST") for r in env.lms.service_requests)
    assert len(env.lms.lineitems) == 13


def test_with_only_the_score_scope_the_tool_posts_to_the_coupled_item_only(env):
    fast(env.app)
    env.lms.tools[env.client_id].scopes = [C.SCOPE_SCORE, C.SCOPE_NRPS]
    iid, rl = launch(env, lineitem=True)
    li = only_lineitem(env.lms)
    award(env, iid, rl, 9)
    settle(env.app)
    assert env.lms.result(li, "learner-1").score_given == 9
    assert env.lms.tokens and all(
        t.scopes == [C.SCOPE_SCORE] for t in env.lms.tokens.values()
    )

    # A link without a coupled column: nothing to post to, and no column may be created.
    iid2, rl2 = launch(env, "learner-2", resource_link_id="rl-2", lineitem=False)
    award(env, iid2, rl2, 2)
    settle(env.app)
    assert len(env.lms.lineitems) == 1
    failed = [r for r in rows(env.app) if r.resource_link_pk == rl2]
    assert failed and {r.state for r in failed} == {"failed"}
    assert "score scope" in (failed[-1].last_error or "")
    assert not any(r[:2] == ("lineitems", "POST") for r in env.lms.service_requests)


def test_launch_without_ags_enqueues_nothing(env):
    iid, rl = launch(env, ags=False)
    award(env, iid, rl, 3)
    assert rows(env.app) == []


# ------------------------------------------------------------------------------ score bodies


def test_progress_only_until_there_is_something_to_score(env):
    fast(env.app)
    iid, rl = launch(env, lineitem=True)
    li = only_lineitem(env.lms)
    award(env, iid, rl, None, "Started", "Pending", comment="Started here.")
    settle(env.app)
    started = env.lms.scores[-1].body
    assert "scoreGiven" not in started and "scoreMaximum" not in started
    assert (started["activityProgress"], started["gradingProgress"]) == ("Started", "Pending")
    # Zero CECs so far: Canvas would show "needs grading", so still no scoreGiven.
    award(env, iid, rl, 0, "InProgress", "Pending")
    settle(env.app)
    assert "scoreGiven" not in env.lms.scores[-1].body
    award(env, iid, rl, 6, "InProgress", "Pending")
    settle(env.app)
    assert env.lms.scores[-1].body["scoreGiven"] == 6
    sent = len(env.lms.scores)
    # A relaunch reports "Started" again: it must not blank the 6 CECs in the gradebook.
    award(env, iid, rl, None, "Started", "Pending", comment="Started again.")
    settle(env.app)
    assert env.lms.result(li, "learner-1").score_given == 6
    assert len(env.lms.scores) == sent
    assert_clean_history(env.lms)


def test_comment_is_in_the_learners_language(env, monkeypatch):
    from lti_tool.passback import outbox

    seen = []
    real = outbox.default_comment

    def spy(lang, *a):  # type: ignore[no-untyped-def]
        seen.append(lang)
        return real(lang, *a)

    monkeypatch.setattr(outbox, "default_comment", spy)
    iid, rl = launch(env, locale="de-DE")
    seen.clear()
    award(env, iid, rl, 4)
    assert seen == ["de"]
    assert rows(env.app)[-1].comment


def test_identical_score_is_not_queued_twice(env):
    env.app.config["PASSBACK_DELIVERY"] = "off"
    iid, rl = launch(env, lineitem=True)
    before = len(rows(env.app))
    award(env, iid, rl, 4)
    award(env, iid, rl, 4)
    assert len(rows(env.app)) == before + 1


def test_bad_values_are_refused_before_anything_is_written(env):
    iid, rl = launch(env, lineitem=True)
    before = len(rows(env.app))
    with env.app.app_context(), db.standalone_session() as s:
        for kw in (
            {"activity_progress": "completed"},
            {"grading_progress": "Graded"},
            {"score_given": 15.0},
            {"score_given": -1.0},
        ):
            args = {
                "instructor_id": iid,
                "resource_link_pk": rl,
                "score_given": 3.0,
                "score_maximum": 14.0,
                "activity_progress": "InProgress",
                "grading_progress": "Pending",
                **kw,
            }
            with pytest.raises(ValueError):
                enqueue_score(s, **args)
    assert len(rows(env.app)) == before


# ------------------------------------------------------------------------------ outbox rules


def test_rolled_back_award_sends_nothing(env):
    fast(env.app)
    iid, rl = launch(env, lineitem=True)
    before, requests = len(rows(env.app)), env.lms.score_requests
    with env.app.app_context(), db.standalone_session() as s:
        enqueue_score(
            s, instructor_id=iid, resource_link_pk=rl, score_given=3, score_maximum=14,
            activity_progress="InProgress", grading_progress="Pending",
        )
        s.rollback()
    assert wait_idle(env.app)
    assert len(rows(env.app)) == before and env.lms.score_requests == requests


def test_only_the_newest_pending_score_is_sent(env):
    fast(env.app)
    env.app.config["PASSBACK_DELIVERY"] = "off"  # the LMS is "down": only the worker sends
    iid, rl = launch(env, lineitem=True)
    li = only_lineitem(env.lms)
    for cecs in (2, 5, 9):
        award(env, iid, rl, cecs)
    assert pending(env.app) >= 3
    settle(env.app)
    assert [s.body.get("scoreGiven") for s in env.lms.scores] == [9]
    assert env.lms.result(li, "learner-1").score_given == 9
    states = [r.state for r in rows(env.app)]
    assert states[-3:] == ["superseded", "superseded", "sent"]
    assert set(states[:-3]) <= {"superseded"}  # what the launch reported


def test_two_workers_at_once_send_each_score_once(env):
    import threading

    fast(env.app)
    env.app.config["PASSBACK_DELIVERY"] = "off"
    _iid, rl = launch(env, lineitem=True)
    for iid in add_learners(env, "l", 8):
        award(env, iid, rl, 10)
    workers = [Worker(env.app, batch=3, threads=3) for _ in range(2)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for w in workers:
        w.close()
    assert pending(env.app) == 0
    learners = {s.user_id for s in env.lms.scores if s.user_id.startswith("l-")}
    assert len(learners) == 8
    assert env.lms.score_requests == sum(w.attempts for w in workers) <= 9  # + the launch's
    assert env.lms.token_requests == 1
    assert_clean_history(env.lms)


# ------------------------------------------------------------------------------ tokens


def test_one_token_is_shared_by_processes_and_renewed_after_401(env, tmp_path):
    fast(env.app)
    iid, rl = launch(env, lineitem=True)
    li = only_lineitem(env.lms)
    award(env, iid, rl, 1)
    settle(env.app)
    assert env.lms.token_requests == 1
    with env.app.app_context(), db.standalone_session() as s:
        cached = s.scalars(select(AccessToken)).one()
        assert cached.access_token and unseal(cached.access_token) in env.lms.tokens
        assert cached.scopes == " ".join(sorted(cached.scopes.split(" ")))

    # A second process (its own app, memory and HTTP pool) on the same database.
    other = create_app({**env.app.config, "PASSBACK_DELIVERY": "off"})
    fast(other)
    try:
        award(env, iid, rl, 2)
        settle(other)
        assert env.lms.result(li, "learner-1").score_given == 2
        assert env.lms.token_requests == 1

        # The platform revokes tokens early: the 401 makes one new token, for everyone.
        env.lms.expire_tokens()
        award(env, iid, rl, 3)
        settle(env.app)
        assert env.lms.result(li, "learner-1").score_given == 3
        assert env.lms.token_requests == 2
        award(env, iid, rl, 4)
        settle(other)
        assert env.lms.result(li, "learner-1").score_given == 4
        assert env.lms.token_requests == 2
    finally:
        other.extensions["lti_tool.engine"].dispose()
    assert_clean_history(env.lms)
    assert env.lms.token_errors == []


def test_client_assertion_uses_the_registrations_token_audience(env):
    fast(env.app)
    audience = "https://api.brightspace.com/auth/token"
    env.lms.tools[env.client_id].token_audience = audience
    with env.app.app_context(), db.standalone_session() as s:
        s.scalars(select(Registration)).one().auth_audience = audience
        s.commit()
    iid, rl = launch(env, lineitem=True)
    award(env, iid, rl, 8)
    settle(env.app)
    assert env.lms.token_errors == []
    assert env.lms.result(only_lineitem(env.lms), "learner-1").score_given == 8


def test_a_burst_of_scores_costs_one_token_request(env):
    fast(env.app)
    _iid, rl = launch(env)
    for iid in add_learners(env, "b", 20):
        award(env, iid, rl, 12)
    settle(env.app)
    assert env.lms.token_requests == 1
    li = only_lineitem(env.lms)  # created once, although 20 senders raced for it
    assert all(env.lms.result(li, f"b-{n}").score_given == 12 for n in range(20))


# ------------------------------------------------------------------------------ admin


def test_status_shows_sent_and_failed_with_the_platforms_reason(env):
    fast(env.app)
    a = launch(env, "learner-1", lineitem=True)
    t = launch(env, "teacher-1", lineitem=True)  # not gradable at the LMS
    award(env, *a, 11)
    award(env, *t, 5)
    settle(env.app)
    with env.app.app_context(), db.standalone_session() as s:
        by_user = {st.user_id: st for st in status(s, context_pk(env))}
    ana, tina = by_user["learner-1"], by_user["teacher-1"]
    assert (ana.state, ana.last_sent_score, ana.error) == ("sent", 11, None)
    assert ana.last_sent_at is not None and ana.lineitem_url
    assert tina.state == "failed" and tina.last_sent_at is None
    assert "HTTP 400" in (tina.error or "") and "not a gradable member" in (tina.error or "")
    assert tina.attempts == 1  # a 400 is not retried


@pytest.mark.parametrize("scope", ["registration", "deployment"])
def test_scores_wait_while_the_platform_is_deactivated_and_go_out_once_it_is_active(env, scope):
    fast(env.app)
    iid, rl = launch(env, "learner-1", lineitem=True)
    sent_before = env.lms.score_requests
    where = ["--issuer", env.lms.issuer, "--client-id", env.client_id]
    if scope == "deployment":
        where += ["--deployment-id", env.deployment_id]
    cli = env.app.test_cli_runner()
    assert cli.invoke(args=["lti", "deactivate", *where]).exit_code == 0

    award(env, iid, rl, 9)
    assert wait_idle(env.app, 10)
    worker = Worker(env.app, batch=10, threads=1)
    try:
        worker.drain()
        time.sleep(0.6)  # past the hold: looked at again, still held
        worker.drain()
    finally:
        worker.close()
    assert env.lms.score_requests == sent_before, "nothing goes to a deactivated platform"
    row = rows(env.app)[-1]
    assert (row.state, row.attempts, row.last_error) == ("pending", 0, HELD)
    with env.app.app_context(), db.standalone_session() as s:
        (st,) = status(s, context_pk(env))
    assert st.held and st.state == "pending"
    out = cli.invoke(args=["passback", "status"]).output
    assert "1 pending held" in out

    assert cli.invoke(args=["lti", "activate", *where]).exit_code == 0
    time.sleep(0.6)  # the hold is over
    settle(env.app)
    assert env.lms.result(only_lineitem(env.lms), "learner-1").score_given == 9
    row = rows(env.app)[-1]
    assert (row.state, row.attempts, row.last_error) == ("sent", 1, None)


def test_resend_learner_and_resend_context_after_the_column_was_recreated(env):
    fast(env.app)
    a = launch(env, "learner-1")
    b = launch(env, "learner-2")
    award(env, *a, 14)
    award(env, *b, 6)
    settle(env.app)
    first = only_lineitem(env.lms)
    ana = len([x for x in env.lms.scores if x.user_id == "learner-1"])
    with env.app.app_context(), db.standalone_session() as s:
        assert resend_learner(s, context_pk=context_pk(env), instructor_id=a[0]) == 1
        s.commit()
    settle(env.app)
    assert len([x for x in env.lms.scores if x.user_id == "learner-1"]) == ana + 1

    # An instructor deletes the gradebook column; the LMS forgets every result.
    with env.lms.lock:
        env.lms.lineitems.pop(first.id)
        for key in [k for k in env.lms.results if k[0] == first.id]:
            env.lms.results.pop(key)
    with env.app.app_context(), db.standalone_session() as s:
        assert resend_context(s, context_pk=context_pk(env)) == 2
        s.commit()
    settle(env.app)
    second = only_lineitem(env.lms)
    assert second.id != first.id
    assert env.lms.result(second, "learner-1").score_given == 14
    assert env.lms.result(second, "learner-2").score_given == 6
    assert_clean_history(env.lms)


def test_a_deleted_column_is_found_or_created_again(env):
    fast(env.app)
    iid, rl = launch(env)
    award(env, iid, rl, 3)
    settle(env.app)
    first = only_lineitem(env.lms)
    with env.lms.lock:
        env.lms.lineitems.pop(first.id)
    award(env, iid, rl, 4)
    settle(env.app)
    second = only_lineitem(env.lms)
    assert second.id != first.id and second.tag == "spin-cecs"
    assert env.lms.result(second, "learner-1").score_given == 4
    assert rows(env.app)[-1].attempts == 2  # a 404, then the new column
    assert_clean_history(env.lms)


def test_a_deleted_coupled_column_named_by_the_launch_is_not_used_again(env):
    fast(env.app)
    iid, rl = launch(env, lineitem=True)  # the platform's column, named in every launch
    first = only_lineitem(env.lms)
    award(env, iid, rl, 3)
    settle(env.app)
    with env.lms.lock:
        env.lms.lineitems.pop(first.id)
    award(env, iid, rl, 5)
    settle(env.app)
    second = only_lineitem(env.lms)
    assert second.tag == "spin-cecs" and env.lms.result(second, "learner-1").score_given == 5
    award(env, iid, rl, 6)
    settle(env.app)
    assert env.lms.result(second, "learner-1").score_given == 6
    assert env.lms.scores[-1].lineitem_id == second.id


def test_a_404_for_one_user_fails_that_score_only(env):
    """Canvas answers 404 for its test students: the column exists, so it is kept."""
    from flask import request

    from tests.lms.web import error

    @env.lms.app.before_request
    def _canvas_test_student():  # type: ignore[no-untyped-def]
        if request.path.endswith("/scores") and b'"test-student"' in request.get_data():
            return error(404, "not_found", "The specified resource does not exist.")
        return None

    fast(env.app)
    iid, rl = launch(env, lineitem=True)
    li = only_lineitem(env.lms)
    student = add_learners(env, "test-student", 1)[0]
    with env.app.app_context(), db.standalone_session() as s:
        from lti_tool.identity.models import Instructor

        s.get(Instructor, student).sub = "test-student"
        s.commit()
    award(env, student, rl, 2)
    settle(env.app)
    failed = rows(env.app)[-1]
    assert (failed.state, failed.http_status, failed.attempts) == ("failed", 404, 1)
    assert "does not exist" in (failed.last_error or "")
    award(env, iid, rl, 7)
    settle(env.app)
    assert env.lms.result(li, "learner-1").score_given == 7
    assert len(env.lms.lineitems) == 1


# ------------------------------------------------------------------------------ pieces


def test_scores_url_goes_before_the_query_string():
    assert scores_url("https://lms/x/lineitems/1/lineitem?type_id=3") == (
        "https://lms/x/lineitems/1/lineitem/scores?type_id=3"
    )
    assert scores_url("https://lms/x/li/1/") == "https://lms/x/li/1/scores"


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
