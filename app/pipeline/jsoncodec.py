"""JSON out: orjson for speed, the standard library where orjson refuses.

PostgreSQL's jsonb keeps any number exactly, so a metadata value such as 1e20 comes back
from the database as the integer 10**20, which orjson (64-bit integers only) will not
write. Those rare values take the slower path instead of failing the request.
"""

from __future__ import annotations

import json

import orjson


def dumps(value) -> bytes:
    """Serialise to compact UTF-8 JSON bytes; non-string keys are written as strings."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()
