"""Opaque page cursors over one vehicle's rows, newest first.

Why opaque: the cursor is DynamoDB's ``LastEvaluatedKey``, which clients must not build or
depend on; it is wrapped as URL-safe base64 JSON and bound to the vehicle it was issued for, so
a cursor from one vehicle cannot be replayed against another and garbage is a clear 400.

Example::

    token = encode_cursor("EV-0042", "2024-05-01T12:00:00.000000Z")
    decode_cursor(token, vehicle_id="EV-0042")   # "2024-05-01T12:00:00.000000Z"
"""

from __future__ import annotations

import base64
import binascii
import json
import re

__all__ = ["InvalidCursorError", "decode_cursor", "encode_cursor"]

_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_MAX_CURSOR = 512


class InvalidCursorError(ValueError):
    """A ``next`` cursor that this API did not issue for this vehicle."""


def encode_cursor(vehicle_id: str, ts: str) -> str:
    """The cursor that continues after the row (``vehicle_id``, ``ts``)."""
    raw = json.dumps({"v": vehicle_id, "t": ts}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, *, vehicle_id: str) -> str:
    """The ``ts`` to continue after; raises :class:`InvalidCursorError` if it is not ours."""
    if len(token) > _MAX_CURSOR:
        raise InvalidCursorError("cursor too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError("cursor is not one this API issued") from exc
    if not isinstance(data, dict) or data.get("v") != vehicle_id:
        raise InvalidCursorError("cursor belongs to another query")
    ts = data.get("t")
    if not isinstance(ts, str) or not _TS.match(ts):
        raise InvalidCursorError("cursor is not one this API issued")
    return ts
