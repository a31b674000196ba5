"""pylti1p3's cookie service with the attributes cross-site frames need today."""

from __future__ import annotations

import hashlib
from typing import Any

from pylti1p3.contrib.flask.cookie import FlaskCookieService


class PartitionedCookieService(FlaskCookieService):
    """Adds `Partitioned` (CHIPS) to pylti1p3's `SameSite=None; Secure` over HTTPS.

    With third-party cookies blocked, Chromium still stores and returns a partitioned cookie
    inside the LMS frame. Over plain http (local trials) cookies are `Lax` and not `Secure`,
    as pylti1p3 does, so a launch on 127.0.0.1 still works.
    """

    # The state is a signed login record, too long to name a cookie after; a digest of it
    # names the cookie and is its value.
    @staticmethod
    def short(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()[:40]

    def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
        super().set_cookie(self.short(name), self.short(str(value)), exp)

    def get_cookie(self, name: str) -> str | None:
        value: str | None = super().get_cookie(self.short(name))
        return value

    def state_is_bound(self, state: str) -> bool:
        """True when this browser holds the cookie set at the login that issued `state`."""
        return self.get_cookie(state) == self.short(state)

    def update_response(self, response: Any) -> None:
        request: Any = self._request
        pending: Any = self._cookie_data_to_set
        secure = bool(request.is_secure())
        for key, data in pending.items():
            response.set_cookie(
                key,
                data["value"],
                max_age=data["exp"],
                path="/",
                httponly=True,
                secure=secure,
                samesite="None" if secure else "Lax",
                partitioned=secure,
            )
