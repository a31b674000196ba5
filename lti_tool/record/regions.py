"""Renewal fee, currency and renewal page per Spinning® region (domain §1.0: fees differ by
region and page version, so they are configuration). EMEA is the default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Flask, current_app

DEFAULT_REGIONS: dict[str, dict[str, Any]] = {
    "emea": {
        "currency": "EUR",
        "fee": "70",
        "member_fee": "35",
        "url": "https://en1.spinning.com/instructors/education/certification-renewal",
    },
    "us": {
        "currency": "USD",
        "fee": "79",
        "member_fee": "39.50",
        "url": "https://spinning.com/instructors/education/certification-renewal",
    },
}


@dataclass(frozen=True)
class Region:
    code: str
    currency: str
    fee: Decimal
    member_fee: Decimal
    url: str
    url_by_language: dict[str, str]

    def renewal_url(self, lang: str) -> str:
        return self.url_by_language.get(lang, self.url)

    def fee_for(self, member: bool | None) -> Decimal | None:
        """None when membership is unknown: then both fees are shown."""
        if member is None:
            return None
        return self.member_fee if member else self.fee


def configure(app: Flask) -> None:
    app.config.setdefault("CEC_REGIONS", DEFAULT_REGIONS)
    app.config.setdefault("CEC_REGION", os.environ.get("CEC_REGION", "emea"))
    app.config.setdefault(
        "CEC_EXPIRING_SOON_DAYS", int(os.environ.get("CEC_EXPIRING_SOON_DAYS", "90"))
    )


def region(code: str | None = None) -> Region:
    regions: dict[str, dict[str, Any]] = current_app.config["CEC_REGIONS"]
    code = code or current_app.config["CEC_REGION"]
    raw = regions.get(code) or regions.get("emea") or DEFAULT_REGIONS["emea"]
    return Region(
        code=code,
        currency=str(raw["currency"]),
        fee=Decimal(str(raw["fee"])),
        member_fee=Decimal(str(raw["member_fee"])),
        url=str(raw["url"]),
        url_by_language=dict(raw.get("url_by_language") or {}),
    )
