"""The instructor's record pages ("My CECs", certificate) and the public verification page."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_currency
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .. import db
from ..content import Course, get_course
from ..course.setup import course_settings
from ..course.views import current_instructor, launched, text
from ..i18n import current_language
from ..identity.models import Instructor
from ..identity.service import parse_certification_date
from ..learning import service as learning
from . import certificates, ledger, pdf
from .cycle import State, Status
from .models import Certificate, CertificationRenewal
from .regions import region

bp = Blueprint("record", __name__, url_prefix="/record")
verify_bp = Blueprint("verify", __name__)


def _status(s: Session, inst: Instructor, course: Course) -> Status:
    return ledger.status(
        s,
        instructor_id=inst.id,
        exam_date=inst.certification_date,
        today=db.utcnow().date(),
        course_id=course.id,
        cecs_required=float(course.cecs),
        expiring_soon_days=int(current_app.config["CEC_EXPIRING_SOON_DAYS"]),
    )


def _money(amount: Decimal, currency: str) -> str:
    return str(format_currency(amount, currency))


def _render(template: str, course: Course, **ctx: Any) -> str:
    return render_template(template, course=course, t=lambda v: text(course, v), **ctx)


def _record_page(inst: Instructor, course: Course, *, date_error: str | None = None,
                 date_value: str = "") -> str:
    s = db.session()
    status = _status(s, inst, course)
    win = ledger.window(inst.certification_date, db.utcnow().date())
    rows = ledger.awards(s, inst.id, course.id)
    reg = region()
    fee = reg.fee_for(inst.spin_member)
    return _render(
        "record/my_cecs.html", course, nav="record", instructor=inst, status=status, State=State,
        transcript=[(a, a.awarded_on in win, course.module(a.module_id)) for a in rows],
        fee=_money(fee, reg.currency) if fee is not None else None,
        full_fee=_money(reg.fee, reg.currency), member_fee=_money(reg.member_fee, reg.currency),
        renewal_url=reg.renewal_url(current_language()), date_error=date_error,
        date_value=date_value, today=db.utcnow().date(),
    )


@bp.get("/")
@launched
def my_cecs() -> str:
    return _record_page(current_instructor(), get_course())


@bp.post("/certification-date")
@launched
def certification_date() -> Any:
    inst = current_instructor()
    raw = (request.form.get("certification_date") or "").strip()
    error = None
    parsed: date | None = None
    if not raw:
        error = _("Enter the date you passed the Spinning® Instructor Certification exam.")
    else:
        try:
            parsed = date.fromisoformat(raw)
        except ValueError:
            error = _("Enter a real date, for example 2025-03-14.")
        else:
            if parsed > db.utcnow().date():
                error = _("The exam date cannot be in the future.")
            elif parse_certification_date(raw) is None:
                error = _("Enter a date from 1990 onwards.")
    if error or parsed is None:
        return _record_page(inst, get_course(), date_error=error, date_value=raw), 422
    s = db.session()
    inst.certification_date = parsed
    s.commit()
    return redirect(url_for("record.my_cecs"), code=303)


@bp.post("/renewal")
@launched
def renewal() -> Any:
    inst = current_instructor()
    course = get_course()
    s = db.session()
    status = _status(s, inst, course)
    if status.state is not State.ELIGIBLE or status.cycle is None:
        abort(409)
    ins = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(
        ins(CertificationRenewal)
        .values(instructor_id=inst.id, cycle_expires_on=status.cycle.expires_on,
                recorded_at=db.utcnow())
        .on_conflict_do_nothing()
    )
    s.commit()
    return redirect(url_for("record.my_cecs"), code=303)


def _completion(s: Session, inst: Instructor, course: Course) -> certificates.Completion | None:
    now = db.utcnow()
    state = learning.load(s, inst, course, course_settings(), now)
    if not state.complete:
        return None
    win = ledger.window(inst.certification_date, now.date())
    rows = [a for a in ledger.awards(s, inst.id, course.id) if a.awarded_on in win]
    latest = max(rows, key=lambda a: (a.awarded_at, a.id))
    status = _status(s, inst, course)
    expires = None
    if status.state is State.RENEWED:
        expires = status.next_expiry
    elif status.state is not State.EXPIRED and status.cycle is not None:
        expires = status.cycle.expires_on
    return certificates.Completion(
        cycle_key=win.key,
        cecs=sum((a.cecs for a in rows), Decimal(0)),
        course_version=latest.course_version,
        completed_on=latest.awarded_on,
        certification_expires_on=expires,
    )


def verify_url(cert: Certificate) -> str:
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url.rstrip("/")
    # Built by hand: url_for would add this frame's session token, which must never leave.
    return f"{base}{request.script_root}/verify/{certificates.pretty(cert.code)}"


@bp.get("/certificate")
@launched
def certificate() -> str:
    inst = current_instructor()
    course = get_course()
    s = db.session()
    completion = _completion(s, inst, course)
    live = certificates.live(s, inst.id, course.id, completion.cycle_key) if completion else None
    return _render(
        "record/certificate.html", course, nav="certificate", instructor=inst,
        completion=completion, live=live, history=certificates.history(s, inst.id),
        verify_url=verify_url, pretty=certificates.pretty, name_error=None,
        name_value=inst.display_name,
    )


@bp.post("/certificate")
@launched
def certificate_issue() -> Any:
    inst = current_instructor()
    course = get_course()
    s = db.session()
    completion = _completion(s, inst, course)
    if completion is None:
        abort(409)
    name = " ".join((request.form.get("holder_name") or "").split())
    if not name or len(name) > 300:
        return _render(
            "record/certificate.html", course, nav="certificate", instructor=inst,
            completion=completion, live=None, history=certificates.history(s, inst.id),
            verify_url=verify_url, pretty=certificates.pretty,
            name_error=_("Enter your name as it should appear on the certificate."),
            name_value=name,
        ), 422
    certificates.issue(s, instructor_id=inst.id, course_id=course.id, holder_name=name,
                       completion=completion, now=db.utcnow())
    return redirect(url_for("record.certificate"), code=303)


def _own_certificate(cert_id: int) -> Certificate:
    cert = db.session().get(Certificate, cert_id)
    if cert is None or cert.instructor_id != current_instructor().id:
        abort(404)
    return cert


@bp.get("/certificate/<int:cert_id>/certificate.pdf")
@launched
def certificate_pdf(cert_id: int) -> Response:
    cert = _own_certificate(cert_id)
    course = get_course()
    body = pdf.render(cert, course_title=text(course, course.title),
                      verify_url=verify_url(cert), lang=current_language())
    resp = Response(body, mimetype="application/pdf")
    resp.headers["Content-Disposition"] = (
        f'attachment; filename="spinning-cec-certificate-{cert.completed_on.isoformat()}.pdf"'
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/certificate/<int:cert_id>/revoke")
@launched
def certificate_revoke(cert_id: int) -> Any:
    cert = _own_certificate(cert_id)
    certificates.revoke(db.session(), cert.instructor_id, cert.id, db.utcnow())
    return redirect(url_for("record.certificate"), code=303)


# --------------------------------------------------------------------------- public


@verify_bp.get("/verify")
def verify_form() -> Any:
    raw = request.args.get("code")
    if raw:
        code = certificates.normalise(raw)
        target = certificates.pretty(code) if code else raw.strip()[:40] or "-"
        return redirect(f"{request.script_root}/verify/{target}", code=303)
    return render_template("record/verify.html", cert=None, searched=False, course_title=None)


@verify_bp.get("/verify/<code>")
def verify(code: str) -> Any:
    cert = certificates.verify(db.session(), code)
    course_title = None
    if cert is not None:
        course = get_course()
        course_title = text(course, course.title)
    body = render_template("record/verify.html", cert=cert, searched=True,
                           course_title=course_title, code=code[:40])
    resp = Response(body, status=200 if cert else 404, mimetype="text/html")
    # Codes sit in the URL: keep them out of caches and search engines.
    resp.headers["X-Robots-Tag"] = "noindex"
    return resp
