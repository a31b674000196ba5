"""The course as the application uses it: language-neutral structure, text per language."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Choice:
    id: str
    text: dict[str, str]
    feedback: dict[str, str]


@dataclass(frozen=True)
class Question:
    id: str
    type: str  # "single" or "multiple"
    lesson_id: str
    prompt: dict[str, str]
    choices: tuple[Choice, ...]
    correct: frozenset[str]


@dataclass(frozen=True)
class Lesson:
    id: str
    module_id: str
    minutes: int
    title: dict[str, str]
    objectives: dict[str, tuple[str, ...]]
    sources: tuple[tuple[str, str], ...]
    html: dict[str, str]
    words: dict[str, int]


@dataclass(frozen=True)
class Module:
    id: str
    cecs: float
    title: dict[str, str]
    summary: dict[str, str]
    objectives: dict[str, tuple[str, ...]]
    lessons: tuple[Lesson, ...]
    questions: tuple[Question, ...]

    @property
    def minutes(self) -> int:
        return sum(lesson.minutes for lesson in self.lessons)

    def lesson(self, lesson_id: str) -> Lesson | None:
        return next((x for x in self.lessons if x.id == lesson_id), None)


@dataclass(frozen=True)
class Course:
    id: str
    version: str
    cecs: float
    pass_mark: float
    questions_per_attempt: int
    languages: tuple[str, ...]
    title: dict[str, str]
    description: dict[str, str]
    modules: tuple[Module, ...]
    assets: dict[str, str] = field(default_factory=dict)

    def module(self, module_id: str) -> Module | None:
        return next((m for m in self.modules if m.id == module_id), None)

    @property
    def lesson_count(self) -> int:
        return sum(len(m.lessons) for m in self.modules)

    @property
    def question_count(self) -> int:
        return sum(len(m.questions) for m in self.modules)
