"""Markdown to safe HTML: markdown-it-py (CommonMark + tables), then the nh3 sanitizer.

Raw HTML in content is never rendered (markdown-it's `html` option is off) and the output is
sanitized again, so a content file can never put a script into a page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

_TAGS = {
    "p", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "code", "pre",
    "blockquote", "table", "thead", "tbody", "tr", "th", "td", "img", "a", "hr", "br", "div",
}
_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "loading", "decoding"},
    "div": {"class"},
    "th": {"scope"},
    "ol": {"start"},
}
LESSON_LINK = re.compile(r'href="lesson:([a-z0-9-]+)/([a-z0-9-]+)"')


def markdown(*, checking: bool = False) -> MarkdownIt:
    """The lesson parser. `checking=True` is for the checker only: raw HTML becomes html_block /
    html_inline tokens and every link target is accepted, so that both can be reported (otherwise
    they would silently end up as literal text). Rendering always uses the strict parser."""
    md = MarkdownIt("commonmark", {"html": checking, "linkify": False, "typographer": False})
    if checking:
        md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.enable("table")
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    md.add_render_rule("th_open", _th_open)
    md.add_render_rule("image", _image)
    return md


def _table_open(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    # Wide tables scroll inside their own box on a phone instead of widening the page.
    return '<div class="table-wrap"><table>\n'


def _table_close(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    return "</table></div>\n"


def _th_open(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    return '<th scope="col">'


def _image(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    rewrite: Callable[[str], str] | None = env.get("image_src") if isinstance(env, dict) else None
    if rewrite:
        src = rewrite(src)
    alt = self.renderInlineAsText(token.children or [], options, env)
    from markupsafe import escape

    return f'<img src="{escape(src)}" alt="{escape(alt)}" loading="lazy" decoding="async">'


def render(text: str, image_src: Callable[[str], str] | None = None) -> str:
    html = markdown().render(text, {"image_src": image_src})
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRS,
        url_schemes={"http", "https", "lesson"},
        link_rel="noopener noreferrer",
    )


def link_lessons(html: str, url_for_lesson: Callable[[str, str], str]) -> str:
    """Turn `lesson:module/lesson` links into this request's URLs (they may carry a token)."""
    from markupsafe import escape

    return LESSON_LINK.sub(lambda m: f'href="{escape(url_for_lesson(m[1], m[2]))}"', html)


def plain_text_words(text: str) -> int:
    return len(re.findall(r"\w+", text))
