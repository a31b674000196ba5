"""LTI roles (LTI Core 1.3 §5.3.7, Appendix A.2) mapped to what the tool lets a user do.

Course admins are instructors, administrators and content developers of the LMS context (and
teaching assistants where the operator allows it); anyone else, including unknown, short-form
or missing roles, is a learner.
"""

from __future__ import annotations

from collections.abc import Iterable

_CONTEXT = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
_CONTEXT_SUB = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
_INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
_SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"

ADMIN_ROLES = {"Instructor", "Administrator", "ContentDeveloper"}
ASSISTANT_ROLES = {"TeachingAssistant"}


def _names(role: str) -> set[str]:
    """The role names a claim value stands for: its principal role and, for sub-roles, both."""
    role = role.strip()
    for prefix in (_CONTEXT, _INSTITUTION, _SYSTEM):
        if role.startswith(prefix):
            return {role[len(prefix) :]}
    if role.startswith(_CONTEXT_SUB):
        # e.g. membership/Instructor#TeachingAssistant: principal Instructor, sub-role TA.
        principal, _, sub = role[len(_CONTEXT_SUB) :].partition("#")
        return {principal + "#" + sub, sub} if sub else {principal}
    if "/" not in role and "#" not in role:
        return {role}  # deprecated short form, e.g. "Instructor"
    return set()


def is_course_admin(roles: Iterable[str] | None, allow_assistants: bool = False) -> bool:
    names: set[str] = set()
    for role in roles or ():
        if isinstance(role, str):
            names |= _names(role)
    # A TA sub-role of Instructor is an assistant, not an instructor.
    if (
        any(n.startswith("Instructor#TeachingAssistant") for n in names)
        or "TeachingAssistant" in names
    ):
        if allow_assistants:
            return True
        names -= {"Instructor#TeachingAssistant", "TeachingAssistant"}
        names = {n for n in names if not n.startswith("Instructor#")}
    return bool(names & ADMIN_ROLES)
