"""The course home's module list, each card computed once per page, and the fragment keys
of the home page's parts (course/home.html).

The template used to ask for each module's state four times, and to look up the same
translations, format the same CECs and build a URL per module; a profile of the course home
showed those calls as a large share of its render time. Here every translation is looked up
once per list and filled in per module, with the same escaping as the template's `_()`. The
list itself is a fragment rendered once per `module_list_key`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import url_for
from flask_babel import format_percent
from markupsafe import Markup, escape

from ..i18n import gettext as _
from ..learning.progress import CourseProgress, ModuleState


@dataclass(frozen=True)
class ModuleCard:
    state: str
    url: str
    heading: Markup
    badge: str
    cecs: str
    lessons: Markup
    best: Markup | None
    credited_earlier: bool
    summary: str


def module_cards(
    progress: CourseProgress,
    t: Callable[[dict[str, Any]], str],
    cecs_text: Callable[[Any], str],
) -> list[ModuleCard]:
    # Without arguments, gettext returns the translated format string itself; as escaped
    # Markup, `%` escapes each value filled in (a module title is content, not HTML).
    heading = escape(_("Module %(n)s: %(title)s"))
    lessons = escape(_("Lessons read: %(done)s of %(total)s"))
    best = escape(_("Best quiz result: %(score)s"))
    badges = {
        ModuleState.PASSED: _("Passed"),
        ModuleState.IN_PROGRESS: _("In progress"),
        ModuleState.NOT_STARTED: _("Not started"),
    }
    cecs: dict[float, str] = {}
    cards: list[ModuleCard] = []
    for mp in progress.modules:
        module = mp.module
        state = mp.state
        if module.cecs not in cecs:
            cecs[module.cecs] = cecs_text(module.cecs)
        fraction = mp.best_fraction
        cards.append(
            ModuleCard(
                state=state.value,
                url=url_for("course.module", module_id=module.id),
                heading=heading % {"n": mp.number, "title": t(module.title)},
                badge=badges[state],
                cecs=cecs[module.cecs],
                lessons=lessons % {"done": len(mp.lessons_done), "total": len(module.lessons)},
                best=None if fraction is None else best % {"score": format_percent(fraction)},
                credited_earlier=mp.credited_earlier and not mp.credited,
                summary=t(module.summary),
            )
        )
    return cards


def module_list_key(
    progress: CourseProgress, t: Callable[[dict[str, Any]], str]
) -> tuple[Any, ...]:
    """Everything the module list shows but its URLs' token, as the key of its fragment
    (course/home.html): learners with the same progress share one rendering."""
    return tuple(
        (
            mp.module.id, mp.number, t(mp.module.title), t(mp.module.summary), mp.module.cecs,
            len(mp.module.lessons), mp.state.value, len(mp.lessons_done), mp.best_fraction,
            mp.credited_earlier and not mp.credited,
        )
        for mp in progress.modules
    )


def progress_panel_key(progress: CourseProgress) -> tuple[Any, ...]:
    """Everything the progress panel shows but its URLs' token (course/home.html)."""
    step = progress.continue_at
    return (
        progress.cecs_earned, progress.cecs_total, progress.modules_credited,
        len(progress.modules), progress.complete, progress.minutes_left, progress.started,
        None if step is None else (
            step.module.id, step.module_number, step.lesson.id if step.lesson else None,
            step.lesson_number,
        ),
    )
