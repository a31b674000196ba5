"""The certificate of completion as a PDF (fpdf2) in the learner's language.

Text is set in DejaVu Sans, embedded as a Unicode TrueType font, so every character of the
three languages (and of any learner's name) prints. The font comes from the machine (Debian's
fonts-dejavu-core, which fontconfig depends on) or from CERTIFICATE_FONT_DIR.
"""

from __future__ import annotations

import functools
from pathlib import Path

from flask import current_app
from flask_babel import format_date, format_decimal
from flask_babel import gettext as _
from fpdf import FPDF

from .certificates import pretty
from .models import Certificate

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
    "/Library/Fonts",
)


class FontMissing(RuntimeError):
    pass


@functools.cache
def _find(directory: str | None, name: str) -> Path:
    dirs = [directory] if directory else []
    for d in [*dirs, *_FONT_DIRS]:
        candidate = Path(d) / name
        if candidate.is_file():
            return candidate
    for base in ("/usr/share/fonts", "/usr/local/share/fonts"):
        found = next(Path(base).rglob(name), None) if Path(base).is_dir() else None
        if found:
            return found
    raise FontMissing(f"{name} not found; install fonts-dejavu-core or set CERTIFICATE_FONT_DIR")


def fonts() -> tuple[Path, Path]:
    directory = current_app.config.get("CERTIFICATE_FONT_DIR")
    return _find(directory, "DejaVuSans.ttf"), _find(directory, "DejaVuSans-Bold.ttf")


def render(cert: Certificate, *, course_title: str, verify_url: str, lang: str) -> bytes:
    regular, bold = fonts()
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_lang(lang)
    pdf.set_title(_("Certificate of completion"))
    pdf.set_subject(course_title)
    pdf.set_author(_("Spinning® Instructor Online Recertification"))
    pdf.set_creator("lti-tool")
    pdf.set_auto_page_break(False)
    pdf.add_font("DejaVu", "", str(regular))
    pdf.add_font("DejaVu", "B", str(bold))
    pdf.add_page()
    width = pdf.w - 2 * 20

    # A plain frame in the brand colour; no images, so nothing to fetch or license.
    pdf.set_draw_color(122, 12, 21)
    pdf.set_line_width(1.2)
    pdf.rect(10, 10, pdf.w - 20, pdf.h - 20)
    pdf.set_line_width(0.4)
    pdf.rect(13, 13, pdf.w - 26, pdf.h - 26)

    def line(text: str, size: float, style: str = "", gap: float = 4, color: int = 29) -> None:
        # Long names and titles shrink to one line rather than push the page onto a second.
        pdf.set_font("DejaVu", style, size)
        while size > 12 and pdf.get_string_width(text) > width:
            size -= 1
            pdf.set_font("DejaVu", style, size)
        pdf.set_text_color(color, color, color)
        pdf.set_x(20)
        pdf.multi_cell(width, size * 0.5, text, align="C")
        pdf.ln(gap)

    pdf.set_y(28)
    line(_("Spinning® Instructor Online Recertification"), 13, color=74)
    line(_("Certificate of completion"), 30, "B", gap=10)
    line(_("This certifies that"), 13, color=74)
    line(cert.holder_name, 26, "B", gap=6)
    line(_("has completed the course"), 13, color=74)
    line(course_title, 18, "B", gap=6)
    line(
        _("and earned %(cecs)s SPIN® CECs", cecs=format_decimal(cert.cecs)), 18, "B", gap=10
    )

    facts = [
        (_("Completion date"), format_date(cert.completed_on, format="long")),
        (_("Course version"), cert.course_version),
    ]
    if cert.certification_expires_on is not None:
        facts.append(
            (_("Certification expires"), format_date(cert.certification_expires_on, format="long"))
        )
    facts.append((_("Verification code"), pretty(cert.code)))
    pdf.set_font("DejaVu", "", 11)
    label_w = 70
    for label, value in facts:
        pdf.set_x(50)
        pdf.set_text_color(74, 74, 79)
        pdf.cell(label_w, 7, label + ":", align="R")
        pdf.set_text_color(29, 29, 31)
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(0, 7, "  " + value, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 11)
    pdf.ln(4)
    pdf.set_font("DejaVu", "", 9.5)
    pdf.set_text_color(74, 74, 79)
    pdf.set_x(20)
    pdf.multi_cell(
        width,
        5,
        _("Check this certificate at %(url)s while the holder allows it.", url=verify_url),
        align="C",
    )
    pdf.set_y(pdf.h - 24)
    pdf.set_font("DejaVu", "", 8)
    pdf.set_x(20)
    pdf.multi_cell(
        width, 4,
        _("Spinning®, SPIN® and Energy Zones™ are trademarks of Mad Dogg Athletics, Inc."),
        align="C",
    )
    return bytes(pdf.output())
