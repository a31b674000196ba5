"""The learner's progress through the course: lessons read, quiz attempts, CEC awards on passing,
and the gradebook updates they cause.

Public surface: `service` (the learner's actions as transactions), `progress.CourseProgress`
(where a learner stands), `quiz` (attempt errors, drawn questions, the form token), and the
models `LessonProgress`, `QuizAttempt`, `LearnerLink`.
"""

from __future__ import annotations

import os

from flask import Flask

from . import progress, quiz, service
from .models import LearnerLink, LessonProgress, QuizAttempt

__all__ = [
    "LearnerLink", "LessonProgress", "QuizAttempt", "init_app", "progress", "quiz", "service",
]


def init_app(app: Flask) -> None:
    # A short wait between quiz attempts discourages guessing through retakes; tests set 0.
    app.config.setdefault(
        "QUIZ_COOLDOWN_SECONDS", int(os.environ.get("QUIZ_COOLDOWN_SECONDS", "60"))
    )
