"""The instructor's CEC record ("My CECs"): the append-only CEC ledger, certification cycles and
renewal status, certificates of completion (PDF) and their public, revocable verification.

Public surface: `ledger` (award_module, awards, window, status), `cycle` (pure date logic),
the models, and `init_app(app)` (the record pages and /verify).
"""

from __future__ import annotations

from flask import Flask

from . import cycle, ledger
from .models import CecAward, Certificate, CertificationRenewal

__all__ = ["CecAward", "Certificate", "CertificationRenewal", "cycle", "init_app", "ledger"]


def init_app(app: Flask) -> None:
    from .regions import configure
    from .views import bp, verify_bp

    configure(app)
    app.register_blueprint(bp)
    app.register_blueprint(verify_bp)
