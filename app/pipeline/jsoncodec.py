"""JSON in and out: orjson for speed, the standard library where orjson falls short.

PostgreSQL's jsonb keeps any number exactly, so a metadata value such as 1e20 comes back
from the database as the integer 10**20, which orjson (64-bit integers only) will not
write, and which it would read back as the float 1e+20. Those rare values take the
slower path instead of failing the request or changing the record.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import orjson


def dumps(value) -> bytes:
    """Serialise to compact UTF-8 JSON bytes; non-string keys are written as strings."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


# 19 digits or more may not fit in 64 bits (a false alarm only costs the slower path).
_LONG_NUMBER = re.compile(rb"\d{19,}")


def loads(data: bytes | str):
    """Parse JSON; integers beyond 64 bits stay exact integers."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_NUMBER.search(raw):
        return json.loads(raw)
    return orjson.loads(raw)


def utc_iso(moment: datetime) -> str:
    """An aware datetime in UTC, ISO 8601, exactly as `.astimezone(UTC).isoformat()`
    writes it (property-tested), at a quarter of its cost: every stored log's JSON form
    carries two, and the stream form one."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return orjson.dumps(moment)[1:-1].decode()
