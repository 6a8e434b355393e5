"""The one mapping from a JSON object (or logfmt's pairs) to a log's fields and metadata.

The json and logfmt parsers and the ingest API's JSON body (`LogSchema`) all read records
with `map_fields`, so a record is understood the same whichever way it was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime

from parsers.base import ParsedLog
from parsers.fields import MAX_NAME_CHARS, normalize_level, parse_timestamp

# Per field, the keys read: the first present wins, in this order; the others stay in
# metadata untouched. A dotted name is one literal key ("log.level", as ECS loggers write
# it); a (parent, child) pair reaches into a nested object ({"log": {"level": ...}}).
TIMESTAMP_KEYS = ("timestamp", "time", "@timestamp", "ts", "date")
LEVEL_KEYS = ("level", "severity", "lvl", "log.level", ("log", "level"))
MESSAGE_KEYS = ("message", "msg", "log")
SOURCE_KEYS = ("source", "host", "host.name", "hostname")
APPLICATION_KEYS = ("application", "app", "service", "service.name", "logger")

MISSING_MESSAGE = f"No message: none of the keys {', '.join(MESSAGE_KEYS)} holds one."

Key = str | tuple[str, str]


def map_fields(
    record: dict, have: Collection[str] = (), fallback_level_key: str | None = None
) -> tuple[dict, dict]:
    """Sluice's fields found in `record`, and the keys left over as metadata.

    `record` is not changed. Fields named in `have` (the caller holds them already) are
    not looked for. Found values come normalised: `message` a string (a non-string as its
    compact JSON), `level` a stored level, `timestamp` an aware datetime, `source` and
    `application` strings. A level or timestamp that cannot be read is kept in metadata
    as `level_raw` / `timestamp_raw`; a record naming no message has no `message`.
    `fallback_level_key` (logfmt's `at`) is read only when no level key is present, and
    taken only when its value is a level name, so `at=start` stays in metadata.
    """
    rest, found, unread = dict(record), {}, {}
    if "message" not in have:
        key, value = _take(rest, MESSAGE_KEYS, _is_message)
        if key is not None:
            found["message"] = _message(key, value)
    if "level" not in have:
        _read(rest, found, unread, "level", LEVEL_KEYS, normalize_level)
        if "level" not in found and "level" not in unread and fallback_level_key:
            level = normalize_level(rest.get(fallback_level_key))
            if level is not None:
                found["level"] = level
                del rest[fallback_level_key]
    if "timestamp" not in have:
        _read(rest, found, unread, "timestamp", TIMESTAMP_KEYS, _utc_timestamp)
    for name, keys in (("source", SOURCE_KEYS), ("application", APPLICATION_KEYS)):
        if name not in have:
            key, value = _take(rest, keys, _is_name)
            if key is not None:
                found[name] = value
    nested = rest.get("metadata")
    if isinstance(nested, dict):
        # The sender said explicitly "this is metadata": its keys win over top-level extras.
        del rest["metadata"]
        rest.update(nested)
    rest.update({f"{name}_raw": value for name, value in unread.items()})
    return found, rest


def record_to_log(record: dict, raw: str, fallback_level_key: str | None = None) -> ParsedLog:
    """A flat record as a ParsedLog (see `map_fields`); without a message, the whole line."""
    found, metadata = map_fields(record, fallback_level_key=fallback_level_key)
    # A record without a message is still a log: the whole line is what happened.
    return ParsedLog(
        found.get("message", raw),
        found.get("timestamp"),
        found.get("level"),
        found.get("source"),
        found.get("application"),
        metadata,
    )


def _read(rest, found, unread, name: str, keys, normalize: Callable) -> None:
    key, value = _take(rest, keys, _is_present)
    if key is not None:
        normalized = normalize(value)
        if normalized is None:
            unread[name] = value
        else:
            found[name] = normalized


def _take(rest: dict, keys: tuple[Key, ...], accept: Callable) -> tuple[Key | None, object]:
    """Remove and return (key, value) for the first key whose value `accept`s."""
    for key in keys:
        if isinstance(key, tuple):
            parent, child = key
            outer = rest.get(parent)
            if isinstance(outer, dict) and accept(key, outer.get(child)):
                inner = {k: v for k, v in outer.items() if k != child}
                # The nested object is copied, not edited: the caller's record stays whole.
                if inner:
                    rest[parent] = inner
                else:
                    del rest[parent]
                return key, outer[child]
        elif accept(key, value := rest.get(key)):
            del rest[key]
            return key, value
    return None, None


def _is_present(key: Key, value: object) -> bool:
    # A null counts as absent: the next key is tried and the null stays in metadata.
    return value is not None


def _utc_timestamp(value: object) -> datetime | None:
    # A moment that has no UTC form (year 1 east of Greenwich) is unread, kept raw; the
    # others keep their offset.
    parsed = parse_timestamp(value)
    try:
        if parsed is not None:
            parsed.astimezone(UTC)
    except OverflowError:
        return None
    return parsed


def _is_message(key: Key, value: object) -> bool:
    # An object under `log` is ECS's namespace (`log.level`, `log.logger`), not a message.
    return value is not None and not (key == "log" and isinstance(value, dict))


def _is_name(key: Key, value: object) -> bool:
    # ECS-style `"host": {"name": ...}` is not a source name, and a string too long for
    # one is not either: both stay in metadata as sent (as they did before the mapping).
    return isinstance(value, str) and len(value) <= MAX_NAME_CHARS


def _message(key: Key, value: object) -> str:
    if not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if key == "log" and value.endswith("\n"):
        # Docker's json-file driver keeps the line's own newline; it is not the message.
        return value[:-1].removesuffix("\r")
    return value
