"""The field vocabulary every log shares: levels and timestamps, normalised.

Pure functions used by the API's schemas, by the drain and by every format parser, so a
`warning` from syslog and a `WARN` from a JSON shipper end up as the same stored level.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

# Stored levels, lowest to highest. `min_level=WARN` means WARN and everything after it.
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
# The longest source or application a log can have (the `logs` columns are varchar(255)).
MAX_NAME_CHARS = 255
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}

LEVEL_ALIASES = {
    "trace": "TRACE",
    "verbose": "TRACE",
    "debug": "DEBUG",
    "dbg": "DEBUG",
    "info": "INFO",
    "information": "INFO",
    "informational": "INFO",
    "notice": "INFO",
    "log": "INFO",
    "warn": "WARN",
    "warning": "WARN",
    "wrn": "WARN",
    "error": "ERROR",
    "err": "ERROR",
    "eror": "ERROR",
    "severe": "ERROR",
    "critical": "CRITICAL",
    "crit": "CRITICAL",
    "fatal": "CRITICAL",
    "panic": "CRITICAL",
    "emerg": "CRITICAL",
    "emergency": "CRITICAL",
    "alert": "CRITICAL",
}

# pino and bunyan (Node) write levels as numbers; these six are the only ones they use.
NUMERIC_LEVELS = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "CRITICAL"}

# RFC 5424 severities 0..7 in the order the RFC numbers them.
SYSLOG_SEVERITY = ("CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG")

# Epoch numbers above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_EPOCH_MS_THRESHOLD = 1e11


def normalize_level(value: object) -> str | None:
    """Map a level name (any case, common aliases) or a pino/bunyan number to a stored level."""
    if isinstance(value, int) and not isinstance(value, bool):
        return NUMERIC_LEVELS.get(value)
    if not isinstance(value, str):
        return None
    return LEVEL_ALIASES.get(value.strip().lower())


def levels_at_least(minimum: str) -> list[str]:
    """The stored levels at or above `minimum` (which must already be normalised)."""
    return list(LEVELS[LEVEL_RANK[minimum] :])


def parse_timestamp(value: object) -> datetime | None:
    """ISO 8601 (zone optional, UTC assumed), epoch seconds/ms or a datetime -> aware datetime.

    Returns None for anything else, including booleans, NaN and out-of-range numbers.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if _looks_numeric(text):
        try:
            return _from_epoch(float(text))
        except ValueError:
            return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _looks_numeric(text: str) -> bool:
    body = text[1:] if text[0] in "+-" else text
    return body.replace(".", "", 1).isdigit()


def _from_epoch(number: float) -> datetime | None:
    if not math.isfinite(number):
        return None
    if abs(number) >= _EPOCH_MS_THRESHOLD:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
