"""LTI roles claim → course admin or learner (LTI Core 1.3 §5.3.7, Appendix A.2).

Context and institution roles, full and short (deprecated) forms, sub-roles, unknown and
missing roles; teaching assistants only where the course (or the operator) allows it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lti_tool.admin import AuditEntry
from lti_tool.lti.roles import ADMIN, ASSISTANT, LEARNER, classify, is_course_admin
from tests.admin_helpers import form, query, use_course
from tests.lms import claims as C

M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
MS = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYS = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"

CASES = {
    "context instructor": ([M + "Instructor"], ADMIN),
    "context administrator": ([M + "Administrator"], ADMIN),
    "context content developer": ([M + "ContentDeveloper"], ADMIN),
    "short instructor": (["Instructor"], ADMIN),
    "short administrator": (["Administrator"], ADMIN),
    "short content developer": (["ContentDeveloper"], ADMIN),
    "instructor sub-role": ([MS + "Instructor#Lecturer"], ADMIN),
    "administrator sub-role": ([MS + "Administrator#Developer"], ADMIN),
    "institution administrator": ([INST + "Administrator"], ADMIN),
    "system administrator": ([SYS + "Administrator"], ADMIN),
    "system sysadmin": ([SYS + "SysAdmin"], ADMIN),
    "learner": ([M + "Learner"], LEARNER),
    "short learner": (["Learner"], LEARNER),
    "mentor": ([M + "Mentor"], LEARNER),
    "learner with instructor sub-role": ([MS + "Learner#Instructor"], LEARNER),
    # Canvas sends the institution role of anyone who teaches anywhere.
    "learner who teaches elsewhere": ([INST + "Instructor", M + "Learner"], LEARNER),
    "institution instructor only": ([INST + "Instructor"], LEARNER),
    "institution faculty": ([INST + "Faculty"], LEARNER),
    "system user": ([SYS + "User"], LEARNER),
    "unknown": (["http://example.com/roles#Boss"], LEARNER),
    "lti 1.1 urn": (["urn:lti:role:ims/lis/Instructor"], LEARNER),
    "empty": ([], LEARNER),
    "teaching assistant": ([M + "Instructor", MS + "Instructor#TeachingAssistant"], ASSISTANT),
    "teaching assistant sub-role only": ([MS + "Instructor#TeachingAssistant"], ASSISTANT),
    "short teaching assistant": (["TeachingAssistant"], ASSISTANT),
    "assistant who is also a content developer": (
        [MS + "Instructor#TeachingAssistant", M + "ContentDeveloper"], ADMIN
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_role_mapping(name):
    roles, expected = CASES[name]
    assert classify(roles) == expected
    assert is_course_admin(roles) is (expected == ADMIN)
    assert is_course_admin(roles, allow_assistants=True) is (expected in (ADMIN, ASSISTANT))


def test_missing_and_malformed_roles_mean_learner():
    assert classify(None) == LEARNER
    assert classify([None, 3, {"x": 1}]) == LEARNER  # type: ignore[list-item]
    assert classify(["  " + M + "Instructor  "]) == ADMIN


_NOT_ADMIN = st.sampled_from(
    [M + "Learner", M + "Mentor", M + "Member", INST + "Instructor", INST + "Student",
     INST + "Faculty", SYS + "User", "Learner", "Mentor", MS + "Learner#Instructor", "Member",
     "urn:lti:role:ims/lis/Instructor"]
) | st.text(max_size=30).filter(lambda r: r.strip() not in {
    "Instructor", "Administrator", "ContentDeveloper", "TeachingAssistant"})


@given(st.lists(_NOT_ADMIN, max_size=6))
def test_no_admin_role_never_makes_an_admin(roles):
    assert not is_course_admin(roles, allow_assistants=True)


# ----------------------------------------------------------------------------- launches


@pytest.fixture
def course(env):  # type: ignore[no-untyped-def]
    return use_course(env.app)


@pytest.mark.parametrize(
    ("roles", "admin"),
    [
        (["Instructor"], True),
        ([INST + "Administrator"], True),
        ([M + "ContentDeveloper"], True),
        ([INST + "Instructor", M + "Learner"], False),
        (["http://example.com/unknown#Role"], False),
        ([], False),
    ],
    ids=["short-instructor", "institution-admin", "content-developer", "canvas-student",
         "unknown", "none"],
)
def test_the_launch_decides_who_reaches_the_admin_pages(env, course, roles, admin):
    b = env.browser()
    home = env.launch("learner-1", browser=b, roles=roles)
    assert home.status_code == 200
    page = b.get(env.tool.url + "/admin/")
    assert page.status_code == (200 if admin else 403)
    assert ("Course administration" in home.text) is admin  # the header link


def test_teaching_assistants_only_where_the_course_admin_allows_it(env, course):
    env.lms.add_user("ta-1", name="Tom Assistant")
    env.lms.enrol(env.context_id, "ta-1",
                  roles=[C.ROLE_INSTRUCTOR, MS + "Instructor#TeachingAssistant"])
    ta = env.browser()
    env.launch("ta-1", browser=ta)
    assert ta.get(env.tool.url + "/admin/modules").status_code == 403
    dl = env.launch("ta-1", message_type=C.DEEP_LINKING_REQUEST)
    assert dl.status_code == 403

    teacher = env.browser()
    env.launch("teacher-1", browser=teacher)
    page = teacher.get(env.tool.url + "/admin/modules")
    f = form(page, "/admin/modules")
    saved = teacher.post(f.action, f.data(allow_assistants="on"))
    assert saved.status_code == 200 and "/admin/modules" in saved.url, saved.text[:500]

    # Allowed from now on, without a new launch; also for content selection.
    assert ta.get(env.tool.url + "/admin/modules").status_code == 200
    dl = env.launch("ta-1", message_type=C.DEEP_LINKING_REQUEST)
    assert dl.status_code == 200
    changes = query(env.app, lambda s: s.query(AuditEntry).filter_by(action="configure").one())
    assert changes.changes["fields"]["allow_assistants"] == [False, True]


def test_the_operator_setting_allows_teaching_assistants_everywhere(env, course):
    env.app.config["ALLOW_ASSISTANT_ADMINS"] = True
    env.lms.add_user("ta-2", name="Tara Assistant")
    env.lms.enrol(env.context_id, "ta-2", roles=["TeachingAssistant"])
    ta = env.browser()
    env.launch("ta-2", browser=ta)
    assert ta.get(env.tool.url + "/admin/").status_code == 200
