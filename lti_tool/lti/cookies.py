"""pylti1p3's cookie service with the attributes cross-site frames need today."""

from __future__ import annotations

from typing import Any

from pylti1p3.contrib.flask.cookie import FlaskCookieService


class PartitionedCookieService(FlaskCookieService):
    """Adds `Partitioned` (CHIPS) to pylti1p3's `SameSite=None; Secure` over HTTPS.

    With third-party cookies blocked, Chromium still stores and returns a partitioned cookie
    inside the LMS frame. Over plain http (local trials) cookies are `Lax` and not `Secure`,
    as pylti1p3 does, so a launch on 127.0.0.1 still works.
    """

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
