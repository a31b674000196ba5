"""Read a course folder into a `Course`, reporting every problem with file and line.

One pass does both: `load(root)` returns the course (or None when it is unusable) and the full
list of problems, so `flask content check` and the application agree on what is valid.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # parses our own SVG files, not user input
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from markdown_it.token import Token

from . import yamlines
from .model import Choice, Course, Lesson, Module, Question
from .render import markdown, plain_text_words, render

ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REQUIRED_LANGUAGES = ("en", "de", "es")
MIN_QUESTIONS = 15
MIN_TRANSLATION_RATIO = 0.6


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _Reader:
    def __init__(self, root: Path, asset_url: str) -> None:
        self.root = root
        self.asset_url = asset_url.rstrip("/")
        self.problems: list[Problem] = []
        self.assets: dict[str, str] = {}

    def problem(self, path: Path | str, line: int, message: str) -> None:
        rel = str(Path(path).relative_to(self.root)) if Path(path).is_absolute() else str(path)
        self.problems.append(Problem(rel, line, message))

    def yaml_file(self, path: Path) -> Any:
        if not path.is_file():
            self.problem(path, 0, "file missing")
            return None
        try:
            return yamlines.load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            self.problem(path, (mark.line + 1) if mark else 1, f"invalid YAML: {exc}")
        except UnicodeDecodeError:
            self.problem(path, 1, "not UTF-8 text")
        return None

    def text(self, path: Path, data: Any, key: str, *, required: bool = True) -> str:
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
        if required:
            self.problem(path, yamlines.line_of(data, key), f"'{key}' must be a non-empty text")
        return ""

    def text_list(self, path: Path, data: Any, key: str) -> tuple[str, ...]:
        value = data.get(key) if isinstance(data, dict) else None
        if (isinstance(value, list) and value
                and all(isinstance(v, str) and v.strip() for v in value)):
            return tuple(v.strip() for v in value)
        self.problem(path, yamlines.line_of(data, key),
                     f"'{key}' must be a non-empty list of texts")
        return ()


def load(
    root: Path | str, asset_url: str = "/course/assets"
) -> tuple[Course | None, list[Problem]]:
    r = _Reader(Path(root).resolve(), asset_url)
    course = _load_course(r)
    return course, sorted(set(r.problems))


def _load_course(r: _Reader) -> Course | None:
    path = r.root / "course.yaml"
    data = r.yaml_file(path)
    if not isinstance(data, dict):
        if data is not None:
            r.problem(path, 1, "must be a mapping")
        return None
    languages = data.get("languages")
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        r.problem(path, yamlines.line_of(data, "languages"), "'languages' must be a list")
        languages = list(REQUIRED_LANGUAGES)
    for lang in REQUIRED_LANGUAGES:
        if lang not in languages:
            r.problem(path, yamlines.line_of(data, "languages"), f"language '{lang}' missing")
    cecs = data.get("cecs")
    if not isinstance(cecs, int | float) or cecs <= 0:
        r.problem(path, yamlines.line_of(data, "cecs"), "'cecs' must be a positive number")
        cecs = 0
    pass_mark = data.get("pass_mark", 0.8)
    if not isinstance(pass_mark, int | float) or not 0 < pass_mark <= 1:
        r.problem(path, yamlines.line_of(data, "pass_mark"), "'pass_mark' must be in (0, 1]")
        pass_mark = 0.8
    per_attempt = data.get("questions_per_attempt", 10)
    if not isinstance(per_attempt, int) or per_attempt < 1:
        r.problem(path, yamlines.line_of(data, "questions_per_attempt"),
                  "'questions_per_attempt' must be a positive whole number")
        per_attempt = 10
    module_ids = data.get("modules")
    if not isinstance(module_ids, list) or not module_ids:
        r.problem(path, yamlines.line_of(data, "modules"), "'modules' must be a non-empty list")
        module_ids = []
    course_id = r.text(path, data, "id")
    version = str(data.get("version") or "")
    if not version:
        r.problem(path, yamlines.line_of(data, "version"), "'version' missing")

    langs = tuple(languages)
    titles: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for lang in langs:
        lpath = r.root / lang / "course.yaml"
        ldata = r.yaml_file(lpath)
        if ldata is not None:
            titles[lang] = r.text(lpath, ldata, "title")
            descriptions[lang] = r.text(lpath, ldata, "description")

    modules: list[Module] = []
    seen: set[str] = set()
    for mid in module_ids:
        if not isinstance(mid, str) or not ID.match(mid) or mid in seen:
            r.problem(path, yamlines.line_of(data, "modules"), f"bad or repeated module id {mid!r}")
            continue
        seen.add(mid)
        module = _load_module(r, mid, langs, int(per_attempt), set(module_ids))
        if module is not None:
            modules.append(module)
    total = sum(m.cecs for m in modules)
    if modules and abs(total - float(cecs)) > 1e-9:
        r.problem(path, yamlines.line_of(data, "cecs"),
                  f"module CECs add up to {total:g}, not the course's {cecs:g}")
    return Course(
        id=course_id,
        version=version,
        cecs=float(cecs),
        pass_mark=float(pass_mark),
        questions_per_attempt=int(per_attempt),
        languages=langs,
        title=titles,
        description=descriptions,
        modules=tuple(modules),
        assets=r.assets,
    )


def _load_module(
    r: _Reader, mid: str, langs: tuple[str, ...], per_attempt: int, all_modules: set[str]
) -> Module | None:
    path = r.root / "modules" / f"{mid}.yaml"
    data = r.yaml_file(path)
    if not isinstance(data, dict):
        return None
    if data.get("id") != mid:
        r.problem(path, yamlines.line_of(data, "id"), f"'id' must be '{mid}'")
    cecs = data.get("cecs")
    if not isinstance(cecs, int | float) or cecs <= 0:
        r.problem(path, yamlines.line_of(data, "cecs"), "'cecs' must be a positive number")
        cecs = 0
    lesson_ids = data.get("lessons")
    if not isinstance(lesson_ids, list) or not lesson_ids:
        r.problem(path, yamlines.line_of(data, "lessons"), "'lessons' must be a non-empty list")
        lesson_ids = []
    lesson_ids = [x for x in lesson_ids if isinstance(x, str)]
    for lid in lesson_ids:
        if not ID.match(lid) or lesson_ids.count(lid) > 1:
            r.problem(path, yamlines.line_of(data, "lessons"), f"bad or repeated lesson id {lid!r}")

    titles: dict[str, str] = {}
    summaries: dict[str, str] = {}
    objectives: dict[str, tuple[str, ...]] = {}
    for lang in langs:
        mpath = r.root / lang / mid / "module.yaml"
        mdata = r.yaml_file(mpath)
        if mdata is not None:
            titles[lang] = r.text(mpath, mdata, "title")
            summaries[lang] = r.text(mpath, mdata, "summary")
            objectives[lang] = r.text_list(mpath, mdata, "objectives")
        folder = r.root / lang / mid
        if folder.is_dir():
            for md in sorted(folder.glob("*.md")):
                if md.stem not in lesson_ids:
                    r.problem(md, 1, f"lesson file not listed in modules/{mid}.yaml")

    lessons = [
        lesson
        for lid in lesson_ids
        if (lesson := _load_lesson(r, mid, lid, langs, all_modules)) is not None
    ]
    questions = _load_quiz(r, mid, langs, set(lesson_ids), per_attempt)
    return Module(
        id=mid,
        cecs=float(cecs),
        title=titles,
        summary=summaries,
        objectives=objectives,
        lessons=tuple(lessons),
        questions=questions,
    )


def _walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for t in tokens:
        out.append(t)
        if t.children:
            out.extend(_walk(t.children))
    return out


def _lesson_structure(
    r: _Reader, path: Path, body: str, offset: int, all_modules: set[str], mid: str
) -> dict[str, Any]:
    """Check a lesson body and return what must match across languages."""
    # Parsed with raw HTML and all link targets recognised, so that they can be reported.
    tokens = markdown(checking=True).parse(body)
    images: list[str] = []
    tables = 0
    block_line = offset
    for tok in _walk(tokens):
        if tok.map:
            block_line = offset + tok.map[0] + 1
        elif tok.type in ("softbreak", "hardbreak"):
            block_line += 1  # inline tokens have no map: count the lines within a paragraph
        if tok.type == "heading_open" and tok.tag == "h1":
            r.problem(path, block_line, "headings start at '##': the lesson title is the H1")
        elif tok.type in ("html_block", "html_inline"):
            r.problem(path, block_line, "raw HTML is not allowed")
        elif tok.type == "table_open":
            tables += 1
        elif tok.type == "image":
            src = str(tok.attrGet("src") or "")
            alt = "".join(c.content for c in tok.children or [])
            if not alt.strip():
                r.problem(path, block_line, f"image {src!r} has no alt text")
            _check_image(r, path, block_line, src)
            images.append(Path(src).name)
        elif tok.type == "link_open":
            _check_link(r, path, block_line, str(tok.attrGet("href") or ""), all_modules, mid)
    return {"images": images, "tables": tables}


def _check_image(r: _Reader, path: Path, line: int, src: str) -> None:
    if re.match(r"^[a-z]+:", src) or src.startswith("/"):
        r.problem(path, line, f"image {src!r} must be a relative path inside the course")
        return
    target = (path.parent / src).resolve()
    if not target.is_relative_to(r.root) or not target.is_file():
        r.problem(path, line, f"image {src!r} not found")
        return
    if target.suffix.lower() not in (".svg", ".png", ".jpg", ".jpeg", ".webp"):
        r.problem(path, line, f"image {src!r} must be SVG, PNG, JPEG or WebP")
        return
    if target.suffix.lower() == ".svg":
        raw = target.read_text(encoding="utf-8", errors="replace")
        try:
            ET.fromstring(raw)  # noqa: S314
        except ET.ParseError as exc:
            r.problem(target, exc.position[0], f"SVG is not well-formed: {exc}")
        bad = re.search(r"<script|\son\w+\s*=|(?:href|src)\s*=\s*[\"'](?:https?:|//|javascript:)",
                        raw, re.I)
        if bad:
            r.problem(target, raw.count("\n", 0, bad.start()) + 1,
                      "SVG must not contain scripts, event handlers or external references")
    r.assets[str(target.relative_to(r.root))] = str(target)


def _check_link(
    r: _Reader, path: Path, line: int, href: str, all_modules: set[str], mid: str
) -> None:
    if href.startswith(("https://", "http://")):
        return
    m = re.match(r"^lesson:([a-z0-9-]+)/([a-z0-9-]+)$", href)
    if m:
        target = r.root / "modules" / f"{m[1]}.yaml"
        if m[1] not in all_modules or not target.is_file():
            r.problem(path, line, f"link {href!r}: no module {m[1]!r}")
            return
        data = yamlines.load(target.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or m[2] not in (data.get("lessons") or []):
            r.problem(path, line, f"link {href!r}: no lesson {m[2]!r} in module {m[1]!r}")
        return
    r.problem(path, line, f"link {href!r} must be https://, http:// or lesson:<module>/<lesson>")


def _load_lesson(
    r: _Reader, mid: str, lid: str, langs: tuple[str, ...], all_modules: set[str]
) -> Lesson | None:
    titles: dict[str, str] = {}
    objectives: dict[str, tuple[str, ...]] = {}
    html: dict[str, str] = {}
    words: dict[str, int] = {}
    lengths: dict[str, int] = {}
    structures: dict[str, dict[str, Any]] = {}
    minutes = 0
    sources: tuple[tuple[str, str], ...] = ()
    for lang in langs:
        path = r.root / lang / mid / f"{lid}.md"
        if not path.is_file():
            r.problem(path, 1, f"lesson missing in '{lang}'")
            continue
        raw = path.read_text(encoding="utf-8")
        try:
            post = frontmatter.loads(raw)
        except (yaml.YAMLError, ValueError) as exc:
            mark = getattr(exc, "problem_mark", None)
            r.problem(path, (mark.line + 1) if mark else 1, f"invalid front matter: {exc}")
            continue
        # meta_text starts with the rest of the opening '---' line, so YAML lines are file lines.
        meta_text = raw.split("---", 2)[1] if raw.startswith("---") else ""
        meta = yamlines.load(meta_text) if meta_text else {}
        if not isinstance(meta, dict):
            r.problem(path, 1, "front matter must be a mapping")
            continue
        if meta.get("id") != lid:
            r.problem(path, yamlines.line_of(meta, "id"), f"front matter 'id' must be '{lid}'")
        titles[lang] = r.text(path, meta, "title")
        objectives[lang] = r.text_list(path, meta, "objectives")
        m = meta.get("minutes")
        if not isinstance(m, int) or m <= 0:
            r.problem(path, yamlines.line_of(meta, "minutes"),
                      "'minutes' must be a positive whole number")
        elif lang == langs[0]:
            minutes = m
        src = meta.get("sources")
        if not isinstance(src, list) or not src:
            r.problem(path, yamlines.line_of(meta, "sources"),
                      "'sources' must list the sources of the facts")
        else:
            parsed = []
            for item in src:
                if (not isinstance(item, dict) or not isinstance(item.get("title"), str)
                        or not str(item.get("url", "")).startswith(("http://", "https://"))):
                    where = yamlines.line_of(item, default=yamlines.line_of(meta, "sources"))
                    r.problem(path, where, "each source needs a 'title' and an http(s) 'url'")
                else:
                    parsed.append((item["title"], str(item["url"])))
            if lang == langs[0]:
                sources = tuple(parsed)
        body = post.content
        # post.content is stripped: count the file lines before where it starts.
        offset = raw[: raw.rfind(body)].count("\n") if body else raw.count("\n")
        if not body.strip():
            r.problem(path, offset + 1, "the lesson has no text")
        structures[lang] = _lesson_structure(r, path, body, offset, all_modules, mid)
        lengths[lang] = len(body)
        words[lang] = plain_text_words(body)
        html[lang] = render(body, image_src=_asset_rewriter(r, path))
    ref = langs[0]
    for lang in langs[1:]:
        if ref not in lengths or lang not in lengths:
            continue
        if lengths[ref] and lengths[lang] < MIN_TRANSLATION_RATIO * lengths[ref]:
            r.problem(r.root / lang / mid / f"{lid}.md", 1,
                      f"suspiciously short translation: {lengths[lang]} characters against "
                      f"{lengths[ref]} in '{ref}' ({lengths[lang] / lengths[ref]:.0%})")
        if structures[lang]["images"] != structures[ref]["images"]:
            r.problem(r.root / lang / mid / f"{lid}.md", 1,
                      f"images {structures[lang]['images']} differ from '{ref}' "
                      f"{structures[ref]['images']}")
        if structures[lang]["tables"] != structures[ref]["tables"]:
            r.problem(r.root / lang / mid / f"{lid}.md", 1,
                      f"{structures[lang]['tables']} tables, "
                      f"'{ref}' has {structures[ref]['tables']}")
    if not html:
        return None
    return Lesson(id=lid, module_id=mid, minutes=minutes, title=titles, objectives=objectives,
                  sources=sources, html=html, words=words)


def _asset_rewriter(r: _Reader, path: Path) -> Any:
    def rewrite(src: str) -> str:
        target = (path.parent / src).resolve()
        if target.is_relative_to(r.root):
            return f"{r.asset_url}/{target.relative_to(r.root).as_posix()}"
        return src

    return rewrite


def _load_quiz(
    r: _Reader, mid: str, langs: tuple[str, ...], lesson_ids: set[str], per_attempt: int
) -> tuple[Question, ...]:
    parsed: dict[str, list[dict[str, Any]]] = {}
    for lang in langs:
        path = r.root / lang / mid / "quiz.yaml"
        data = r.yaml_file(path)
        if data is None:
            continue
        questions = data.get("questions") if isinstance(data, dict) else None
        if not isinstance(questions, list):
            r.problem(path, yamlines.line_of(data, "questions"), "'questions' must be a list")
            continue
        parsed[lang] = [q for q in questions if _check_question(r, path, q, lesson_ids)]
        ids = [q["id"] for q in parsed[lang]]
        for qid in {x for x in ids if ids.count(x) > 1}:
            r.problem(path, 1, f"question id {qid!r} repeated")
        need = max(MIN_QUESTIONS, per_attempt)
        if len(questions) < need:
            r.problem(path, yamlines.line_of(data, "questions"),
                      f"{len(questions)} questions; a pool needs at least {need}")
    ref = langs[0]
    if ref not in parsed:
        return ()
    by_lang = {lang: {q["id"]: q for q in qs} for lang, qs in parsed.items()}
    for lang in langs[1:]:
        if lang not in by_lang:
            continue
        path = r.root / lang / mid / "quiz.yaml"
        ids, ref_ids = [q["id"] for q in parsed[lang]], [q["id"] for q in parsed[ref]]
        if ids != ref_ids:
            # Point at the first question that differs (or the last one, if this list is short).
            pairs = enumerate(zip(ids, ref_ids, strict=False))
            at = next((i for i, (a, b) in pairs if a != b), len(ids) - 1)
            where = yamlines.line_of(parsed[lang][at]) if parsed[lang] else 1
            r.problem(path, where, f"question ids differ from '{ref}'")
        for qid, q in by_lang[lang].items():
            other = by_lang[ref].get(qid)
            if other is None:
                r.problem(path, yamlines.line_of(q), f"question {qid!r} is not in '{ref}'")
                continue
            for key in ("type", "lesson"):
                if q.get(key) != other.get(key):
                    r.problem(path, yamlines.line_of(q, key),
                              f"{qid}: '{key}' differs from '{ref}'")
            if [c["id"] for c in q["choices"]] != [c["id"] for c in other["choices"]]:
                r.problem(path, yamlines.line_of(q, "choices"),
                          f"{qid}: choice ids differ from '{ref}'")
            if set(q["correct"]) != set(other["correct"]):
                r.problem(path, yamlines.line_of(q, "correct"),
                          f"{qid}: answer key differs from '{ref}'")
    out = []
    for q in parsed[ref]:
        same = {lang: by_lang[lang].get(q["id"]) for lang in by_lang}
        texts = {lang: x for lang, x in same.items() if x is not None}
        choices = tuple(
            Choice(
                id=c["id"],
                text={lang: _choice(x, c["id"], "text") for lang, x in texts.items()},
                feedback={lang: _choice(x, c["id"], "feedback") for lang, x in texts.items()},
            )
            for c in q["choices"]
        )
        out.append(Question(
            id=q["id"], type=q["type"], lesson_id=q["lesson"],
            prompt={lang: str(x["prompt"]).strip() for lang, x in texts.items()},
            choices=choices, correct=frozenset(q["correct"]),
        ))
    return tuple(out)


def _choice(question: dict[str, Any], choice_id: str, key: str) -> str:
    for c in question["choices"]:
        if c["id"] == choice_id:
            return str(c.get(key) or "").strip()
    return ""


def _check_question(r: _Reader, path: Path, q: Any, lesson_ids: set[str]) -> bool:
    if not isinstance(q, dict):
        r.problem(path, 1, "each question must be a mapping")
        return False
    qid = q.get("id")
    where = yamlines.line_of(q)
    ok = True
    if not isinstance(qid, str) or not ID.match(qid):
        r.problem(path, where, f"question id {qid!r} must be lowercase letters, digits and hyphens")
        return False
    if q.get("type") not in ("single", "multiple"):
        r.problem(path, yamlines.line_of(q, "type"), f"{qid}: 'type' must be single or multiple")
        ok = False
    if q.get("lesson") not in lesson_ids:
        r.problem(path, yamlines.line_of(q, "lesson"),
                  f"{qid}: 'lesson' must name a lesson of the module")
        ok = False
    if not isinstance(q.get("prompt"), str) or not q["prompt"].strip():
        r.problem(path, yamlines.line_of(q, "prompt"), f"{qid}: 'prompt' missing")
        ok = False
    choices = q.get("choices")
    if not isinstance(choices, list) or not 3 <= len(choices) <= 5:
        r.problem(path, yamlines.line_of(q, "choices"), f"{qid}: needs 3 to 5 choices")
        return False
    ids = []
    for c in choices:
        cline = yamlines.line_of(c, default=yamlines.line_of(q, "choices"))
        if not isinstance(c, dict) or not isinstance(c.get("id"), str):
            r.problem(path, cline, f"{qid}: each choice needs an 'id'")
            return False
        ids.append(c["id"])
        if not isinstance(c.get("text"), str | int | float) or not str(c.get("text")).strip():
            r.problem(path, cline, f"{qid}/{c['id']}: choice 'text' missing")
            ok = False
        if not isinstance(c.get("feedback"), str) or not c["feedback"].strip():
            r.problem(path, cline, f"{qid}/{c['id']}: choice 'feedback' missing")
            ok = False
    if len(set(ids)) != len(ids):
        r.problem(path, yamlines.line_of(q, "choices"), f"{qid}: choice ids repeated")
        ok = False
    correct = q.get("correct")
    if not isinstance(correct, list) or not correct:
        r.problem(path, yamlines.line_of(q, "correct"), f"{qid}: no correct answer")
        return False
    if not set(correct) <= set(ids):
        r.problem(path, yamlines.line_of(q, "correct"), f"{qid}: 'correct' names an unknown choice")
        ok = False
    if q.get("type") == "single" and len(correct) != 1:
        r.problem(path, yamlines.line_of(q, "correct"),
                  f"{qid}: a single-choice question needs exactly one correct choice")
        ok = False
    return ok
