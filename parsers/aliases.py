"""The field aliases JSON and logfmt share, and the split of one record into a ParsedLog."""

from __future__ import annotations

import json

from parsers.base import ParsedLog
from parsers.fields import normalize_level, parse_timestamp

# First alias present wins, in this order; the others stay in metadata untouched.
TIMESTAMP_KEYS = ("timestamp", "time", "@timestamp", "ts")
LEVEL_KEYS = ("level", "severity", "lvl")
MESSAGE_KEYS = ("message", "msg", "log")
SOURCE_KEYS = ("source", "host", "hostname")
APPLICATION_KEYS = ("application", "app", "service", "logger")

# pino and bunyan (Node) write levels as numbers; these six are the only ones they use.
NUMERIC_LEVELS = {
    10: "TRACE",
    20: "DEBUG",
    30: "INFO",
    40: "WARN",
    50: "ERROR",
    60: "CRITICAL",
}


def record_to_log(record: dict, raw: str, fallback_level_key: str | None = None) -> ParsedLog:
    """Split a flat record into the five fields and metadata; `record` is consumed.

    `fallback_level_key` (logfmt's `at`) is read only when no level alias is present,
    and taken only when its value is a level name, so `at=start` stays in metadata.
    """
    message = _pop_first(record, MESSAGE_KEYS)
    if message is None:
        # A record without a message is still a log: the whole line is what happened.
        message = raw
    elif not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False, separators=(",", ":"))

    level_value = _pop_first(record, LEVEL_KEYS)
    level = _level(level_value)
    if level_value is None and fallback_level_key is not None:
        level = normalize_level(record.get(fallback_level_key))
        if level is not None:
            del record[fallback_level_key]

    ts_value = _pop_first(record, TIMESTAMP_KEYS)
    timestamp = parse_timestamp(ts_value) if ts_value is not None else None

    source = _pop_first_str(record, SOURCE_KEYS)
    application = _pop_first_str(record, APPLICATION_KEYS)

    nested = record.get("metadata")
    if isinstance(nested, dict):
        # The sender said explicitly "this is metadata": its keys win over top-level extras.
        del record["metadata"]
        record.update(nested)
    if level is None and level_value is not None:
        record["level_raw"] = level_value
    if timestamp is None and ts_value is not None:
        record["timestamp_raw"] = ts_value
    return ParsedLog(message, timestamp, level, source, application, record)


def _level(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return NUMERIC_LEVELS.get(value)
    return normalize_level(value)


def _pop_first(record: dict, keys: tuple[str, ...]) -> object:
    for key in keys:
        value = record.get(key)
        if value is not None:
            del record[key]
            return value
    return None


def _pop_first_str(record: dict, keys: tuple[str, ...]) -> str | None:
    # ECS-style `"host": {"name": ...}` is not a source name: it stays in metadata as sent.
    for key in keys:
        value = record.get(key)
        if isinstance(value, str):
            del record[key]
            return value
    return None
