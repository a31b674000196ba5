"""LTI roles (LTI Core 1.3 §5.3.7, Appendix A.2) mapped to what the tool lets a user do.

Course admins are instructors, administrators and content developers of the LMS context (and
teaching assistants where that is allowed), plus institution or system administrators; anyone
else, including unknown, short-form or missing roles, is a learner.

Institution roles other than Administrator never make a course admin: the people taking this
course are fitness instructors, and platforms such as Canvas send `institution/person#Instructor`
(or `#Faculty`) for anyone who teaches somewhere, also when they are a learner in this context.
"""

from __future__ import annotations

from collections.abc import Iterable

_CONTEXT = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
_CONTEXT_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
_INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
_SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"

ADMIN_ROLES = frozenset({"Instructor", "Administrator", "ContentDeveloper"})
ASSISTANT_ROLES = frozenset({"TeachingAssistant"})
# LTI Core A.2.1 / A.2.2: the institution or system roles that administer the whole platform.
PLATFORM_ADMIN_ROLES = frozenset({"Administrator", "SysAdmin"})

LEARNER, ASSISTANT, ADMIN = "learner", "assistant", "admin"


def _context_names(role: str) -> set[str]:
    """The context role names a claim value stands for (empty if it is not a context role)."""
    if role.startswith(_CONTEXT):
        return {role[len(_CONTEXT) :]}
    if role.startswith(_CONTEXT_SUB):
        # e.g. membership/Instructor#TeachingAssistant: principal Instructor, sub-role TA. The
        # bare sub-role name is not kept: membership/Learner#Instructor is a learner.
        principal, _, sub = role[len(_CONTEXT_SUB) :].partition("#")
        return {principal, principal + "#" + sub} if sub else {principal}
    if "/" not in role and "#" not in role and ":" not in role:
        return {role}  # deprecated short form (LTI Core A.2.3.1), e.g. "Instructor"
    return set()


def _platform_names(role: str) -> set[str]:
    for prefix in (_INSTITUTION, _SYSTEM):
        if role.startswith(prefix):
            return {role[len(prefix) :]}
    return set()


def classify(roles: Iterable[object] | None) -> str:
    """LEARNER, ASSISTANT (a teaching assistant and nothing more) or ADMIN."""
    context: set[str] = set()
    platform: set[str] = set()
    for role in roles or ():
        if isinstance(role, str):
            value = role.strip()
            context |= _context_names(value)
            platform |= _platform_names(value)
    if platform & PLATFORM_ADMIN_ROLES:
        return ADMIN
    assistant = "TeachingAssistant" in context or any(
        n.startswith("Instructor#TeachingAssistant") for n in context
    )
    if assistant:
        # Platforms send the principal role with a sub-role (Instructor with
        # Instructor#TeachingAssistant), so a TA's "Instructor" is not an instructor's.
        others = {n for n in context if "#" not in n} - {"TeachingAssistant", "Instructor"}
        return ADMIN if others & ADMIN_ROLES else ASSISTANT
    return ADMIN if {n for n in context if "#" not in n} & ADMIN_ROLES else LEARNER


def is_course_admin(roles: Iterable[object] | None, allow_assistants: bool = False) -> bool:
    kind = classify(roles)
    return kind == ADMIN or (kind == ASSISTANT and allow_assistants)
