"""PyJWT's id_token decoding, without its per-character Python loop.

PyJWT checks each base64url segment character by character in a Python generator before
decoding it (GHSA-hxm8-2xgr-2p9m: `urlsafe_b64decode` would silently skip junk). An LTI id_token
has over 2,000 characters, so that loop was a tenth of a launch's validation (bench/launch).
`decoder` is PyJWT with the same check done by one regular expression; everything else
(signature, algorithms, claims) is PyJWT's own. If a PyJWT release renames what is overridden
here, the override simply stops applying and PyJWT's own check runs.
"""

from __future__ import annotations

import binascii
import re

import jwt
from jwt.exceptions import DecodeError
from jwt.utils import base64url_decode, base64url_encode

_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*")


class _FastJWS(jwt.PyJWS):
    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        # The checks of PyJWS._decode_base64url_segment, in the same order.
        stripped = segment.rstrip(b"=")
        padding = len(segment) - len(stripped)
        if padding > 2:
            raise DecodeError(f"Invalid {name} padding")
        if padding and len(segment) % 4 != 0:
            raise DecodeError(f"Invalid {name} padding")
        if len(stripped) % 4 == 1 or not _SEGMENT.fullmatch(stripped):
            raise DecodeError(f"Invalid {name} padding")
        try:
            decoded = base64url_decode(stripped)
        except (TypeError, binascii.Error) as err:
            raise DecodeError(f"Invalid {name} padding") from err
        if base64url_encode(decoded) != stripped:
            raise DecodeError(f"Invalid {name} padding")
        return decoded


class _Decoder(jwt.PyJWT):
    def __init__(self) -> None:
        super().__init__()
        jws = getattr(self, "_jws", None)
        if isinstance(jws, jwt.PyJWS):
            fast = _FastJWS()
            fast.options = jws.options
            self._jws = fast


decoder = _Decoder()
