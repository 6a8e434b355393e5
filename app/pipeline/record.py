"""The log record, defined once: its input shape (`LogSchema`), its form on the stream
(`to_stream_json`), the `logs` table, and its one JSON form once stored (`to_json`).

The same `LogSchema` validates at ingest (HTTP) and again in the drain, so an entry
written to the stream by anything else is held to the same rules before it is stored.
Every path that hands out a stored log (the drain's publish, `POST /data/`, `/logs`,
`/logs/<id>`, `/logs/export`, the WebSocket) goes through `to_json`, so a client sees
one record, byte for byte, whichever way it reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from app.pipeline import jsoncodec
from parsers import UnknownFormatError, get_factory, parse_line
from parsers.aliases import MISSING_MESSAGE, map_fields
from parsers.fields import LEVELS, MAX_NAME_CHARS, normalize_level, parse_timestamp

MAX_MESSAGE_CHARS = 65_536
MAX_METADATA_BYTES = 65_536
KNOWN_FIELDS = frozenset(("timestamp", "level", "source", "application", "message", "metadata"))


@dataclass(frozen=True, slots=True)
class Limits:
    """What a log may hold beyond its schema: JSON nesting and how far its time may stray
    from the moment it was received. Defaults are the settings' defaults, so a caller
    without settings (the drain's raw lines) holds logs to the same rules as ingest."""

    max_json_depth: int = 32  # MAX_JSON_DEPTH
    max_future_seconds: int = 86_400  # MAX_FUTURE_SECONDS
    retention_days: int = 14  # RETENTION_DAYS

    @classmethod
    def of(cls, settings) -> Limits:
        """The limits a `Settings` configures."""
        return cls(settings.max_json_depth, settings.max_future_seconds, settings.retention_days)


DEFAULT_LIMITS = Limits()


def too_deep(value: object, limit: int) -> str | None:
    """None when `value` nests at most `limit` containers deep (a flat object is 1), else
    the path of the first container past the limit. Iterative, and stops at the limit,
    so a value of any depth costs at most its containers down to `limit + 1`."""
    if _nests_within(value, limit):  # nearly every log: no path is built
        return None
    stack = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, dict | list):
                where = f"{path}.{key}" if path else str(key)
                if depth + 1 > limit:
                    return where
                stack.append((child, depth + 1, where))
    return None


def _nests_within(value: object, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return False
                stack.append((child, depth + 1))
    return True


def depth_error(item: object, limit: int) -> dict[str, list[str]] | None:
    """The field errors of an item (a decoded JSON value) nested deeper than `limit`."""
    if not isinstance(item, dict | list):
        return None
    where = too_deep(item, limit)
    if where is None:
        return None
    field = where.split(".", 1)[0] if isinstance(item, dict) else "_schema"
    return {
        field: [f"Nested deeper than {limit} levels at {where!r}; the limit is MAX_JSON_DEPTH."]
    }


def time_window(received: datetime, limits: Limits) -> tuple[datetime, datetime]:
    """The earliest and latest time a log received at `received` may keep as its own."""
    earliest = received - timedelta(days=limits.retention_days)
    return earliest, received + timedelta(seconds=limits.max_future_seconds)


def bound_timestamp(
    timestamp: datetime | None, received: datetime, limits: Limits
) -> tuple[datetime | None, datetime | None]:
    """(time to store, original time or None): a time past `MAX_FUTURE_SECONDS` ahead
    or before the retention window is replaced by `received`, and handed back so it can
    be kept in metadata. A missing time stays missing (the drain stamps it)."""
    if timestamp is None:
        return None, None
    earliest, latest = time_window(received, limits)
    if earliest <= timestamp <= latest:
        return timestamp, None
    return received, timestamp


def keep_in_window(log: dict, received: datetime, limits: Limits) -> bool:
    """Bound a validated log's timestamp in place (`metadata.original_timestamp` keeps
    the one replaced); True when it was replaced."""
    stored, original = bound_timestamp(log.get("timestamp"), received, limits)
    if original is None:
        return False
    log["timestamp"] = stored
    log["metadata"] = {**log.get("metadata", {}), "original_timestamp": original.isoformat()}
    return True


# The table as migration 0001 creates it (the migrations own the DDL; this declares it
# for queries). Column order is the key order of a log's JSON form.
logs = Table(
    "logs",
    MetaData(),
    Column("id", BigInteger),
    Column("timestamp", DateTime(timezone=True)),
    Column("level", String(16)),
    Column("source", String(MAX_NAME_CHARS)),
    Column("application", String(MAX_NAME_CHARS)),
    Column("message", Text),
    Column("metadata", JSONB),
    Column("stream_id", String(41)),
    Column("created_at", DateTime(timezone=True)),
)
STORED = tuple(c.name for c in logs.c)


def to_json(row) -> dict:
    """A stored row (any mapping with the STORED keys) as its one JSON form: every key,
    in table order, timestamps in UTC ISO 8601."""
    out = {name: row[name] for name in STORED}
    out["timestamp"] = jsoncodec.utc_iso(out["timestamp"])
    out["created_at"] = jsoncodec.utc_iso(out["created_at"])
    return out


class Timestamp(fields.Field):
    """ISO 8601 (zone optional, UTC assumed) or epoch seconds/milliseconds, as UTC.

    Stored as UTC (timestamptz keeps no offset anyway); converting here also keeps offsets
    PostgreSQL would refuse (beyond +-15:59) from ever reaching it.
    """

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        parsed = parse_timestamp(value)
        try:
            return parsed.astimezone(UTC)
        except (AttributeError, OverflowError):
            raise ValidationError(
                "Not a timestamp: use ISO 8601 (e.g. 2026-11-28T10:00:00Z) or epoch seconds/ms."
            ) from None

    def _serialize(self, value, attr, obj, **kwargs):
        return value.isoformat() if value is not None else None


class Level(fields.Field):
    """A level name in any case or a common alias (warning, err, fatal...), normalised."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        level = normalize_level(value)
        if level is None:
            raise ValidationError(f"Unknown level {value!r}; use one of {', '.join(LEVELS)}.")
        return level


def _no_nul(value: str | None) -> None:
    if value is not None and "\x00" in value:
        raise ValidationError("Contains a NUL byte, which cannot be stored.")


class LogSchema(Schema):
    """One log. Unknown top-level keys are kept, moved into `metadata`."""

    class Meta:
        unknown = EXCLUDE

    timestamp = Timestamp(load_default=None)
    level = Level(load_default="INFO")
    source = fields.String(
        load_default=None, allow_none=True, validate=[validate.Length(max=MAX_NAME_CHARS), _no_nul]
    )
    application = fields.String(
        load_default=None, allow_none=True, validate=[validate.Length(max=MAX_NAME_CHARS), _no_nul]
    )
    message = fields.String(
        required=True, validate=[validate.Length(max=MAX_MESSAGE_CHARS), _no_nul]
    )
    metadata = fields.Dict(keys=fields.String(), load_default=dict)

    @pre_load
    def _extra_keys_to_metadata(self, data, **kwargs):
        if not isinstance(data, dict):
            raise ValidationError("A log must be a JSON object.", field_name="_schema")
        extra = {k: v for k, v in data.items() if k not in KNOWN_FIELDS}
        if not extra and "message" in data:
            return data
        metadata = data.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            return data  # the metadata field reports the type error
        kept = {k: v for k, v in data.items() if k in KNOWN_FIELDS}
        # Sluice's own names are validated as sent; the other keys are read by the mapping
        # the json parser uses, for the fields those leave out, so both paths store alike.
        found, extra = map_fields(extra, have=kept)
        if "message" not in kept and "message" not in found:
            raise ValidationError(MISSING_MESSAGE, field_name="message")
        return {**kept, **found, "metadata": {**extra, **(metadata or {})}}

    @validates("message")
    def _message_not_blank(self, value: str, **kwargs) -> None:
        if not value.strip():
            raise ValidationError("Must not be blank.")

    @validates("metadata")
    def _metadata_storable(self, value: dict, **kwargs) -> None:
        encoded = jsoncodec.dumps(value)
        if len(encoded) > MAX_METADATA_BYTES:
            raise ValidationError(f"Larger than {MAX_METADATA_BYTES} bytes as JSON.")
        if b"\\u0000" in encoded:
            raise ValidationError("Contains a NUL byte, which cannot be stored.")


log_schema = LogSchema()


def canonical_log(data: object, encoded: bytes) -> dict | None:
    """The log, if `data` (decoded from `encoded`) is already in the form `to_stream_json`
    writes; None when anything is off, so the caller validates it with `LogSchema`.

    The drain re-checks every entry (anything may write to the stream), but entries from
    Sluice's own ingest are canonical: checking that costs a fraction of a schema load.
    """
    if len(encoded) > MAX_METADATA_BYTES or b"\\u0000" in encoded:
        return None
    return _canonical(data)


def quick_log(item: object) -> dict | None:
    """`canonical_log` for an item sent to ingest, or for a raw line as `raw_to_data`
    parsed it: the log `LogSchema` would load from an item already in Sluice's own shape
    (known keys, a canonical level, an ISO time with its offset or an aware datetime),
    or None for the schema to judge. Most senders of the JSON API send that shape, the
    parsers give it, and this costs a fraction of a schema load."""
    log = _canonical(item)
    if log is None:
        return None
    if any(
        v is not None and "\x00" in v for v in (log["message"], log["source"], log["application"])
    ):
        return None
    if log["metadata"]:
        try:
            encoded = jsoncodec.dumps(log["metadata"])
        except (TypeError, ValueError):  # not JSON-able: the schema names the problem
            return None
        if len(encoded) > MAX_METADATA_BYTES or b"\\u0000" in encoded:
            return None
    return log


def _canonical(data: object) -> dict | None:
    if not isinstance(data, dict) or not data.keys() <= KNOWN_FIELDS:
        return None
    message, level = data.get("message"), data.get("level", "INFO")
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE_CHARS:
        return None
    if level not in LEVELS or not isinstance(data.get("metadata", {}), dict):
        return None
    for name in ("source", "application"):
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME_CHARS):
            return None
    timestamp = data.get("timestamp")
    if isinstance(timestamp, datetime):  # a parser's (`raw_to_data`), not JSON's
        if timestamp.tzinfo is None:
            return None
        try:
            timestamp = timestamp.astimezone(UTC)
        except OverflowError:
            return None
    elif timestamp is not None:
        try:
            parsed = datetime.fromisoformat(timestamp)
            if parsed.tzinfo is None:  # canonical stamps carry their offset
                return None
            timestamp = parsed.astimezone(UTC)
        except (TypeError, ValueError, OverflowError):
            return None
    return {
        "timestamp": timestamp,
        "level": level,
        "source": data.get("source"),
        "application": data.get("application"),
        "message": message,
        "metadata": data.get("metadata", {}),
    }


def load_logs(items: list) -> tuple[list[tuple[int, dict]], list[dict]]:
    """Validate each item; return (index, log) for the valid ones and the rejects by index.
    An item already in Sluice's own shape takes the quick check (`quick_log`)."""
    good, rejected = [], []
    for index, item in enumerate(items):
        quick = quick_log(item)
        if quick is not None:
            good.append((index, quick))
            continue
        try:
            good.append((index, log_schema.load(item)))
        except ValidationError as exc:
            rejected.append({"index": index, "errors": exc.messages})
    return good, rejected


def to_stream_json(log: dict) -> bytes:
    """A validated log as the JSON the stream carries (timestamp as ISO 8601 or absent)."""
    out = {k: v for k, v in log.items() if v is not None and v != {}}
    if log.get("timestamp") is not None:
        out["timestamp"] = jsoncodec.utc_iso(log["timestamp"])
    return jsoncodec.dumps(out)


def raw_to_data(line: str, fmt: str | None, now: datetime, limits: Limits = DEFAULT_LIMITS) -> dict:
    """A raw line parsed (`parse_raw`), its time bounded: a parsed time outside the window
    around `now`, the time the line was received (`bound_timestamp`), is replaced by it
    and kept as `metadata.original_timestamp`."""
    data = parse_raw(line, fmt, now, limits)
    timestamp, original = bound_timestamp(data["timestamp"], now, limits)
    if original is not None:
        data["timestamp"] = timestamp
        data["metadata"]["original_timestamp"] = original.isoformat()
    return data


def parse_raw(line: str, fmt: str | None, now: datetime, limits: Limits = DEFAULT_LIMITS) -> dict:
    """A raw line parsed (its format detected unless `fmt` is given), as LogSchema input.

    `now` anchors formats without a year (BSD syslog). `metadata.format` records the
    format. A line whose parsed fields nest deeper than MAX_JSON_DEPTH is kept as raw
    text instead, so it is stored (never failing its chunk) and says why it was not
    parsed. Its time is as parsed: `raw_to_data` bounds it.
    """
    detected, parsed = parse_line(line, fmt, now=now)
    metadata = {**parsed.metadata, "format": detected}
    if too_deep(metadata, limits.max_json_depth) is not None:
        return {
            "timestamp": now,
            "level": "INFO",
            "message": line,
            "metadata": {
                "format": "raw",
                "not_parsed": f"{detected}: nested deeper than {limits.max_json_depth} "
                "levels (MAX_JSON_DEPTH)",
            },
        }
    return {
        "timestamp": parsed.timestamp,
        "level": parsed.level or "INFO",
        "source": parsed.source,
        "application": parsed.application,
        "message": parsed.message or line,
        "metadata": metadata,
    }


def known_format(fmt: str | None) -> str | None:
    """`fmt` if the parser factory knows it (or None); else a ValidationError on `format`."""
    if fmt:
        try:
            get_factory().get(fmt)
        except UnknownFormatError as exc:
            raise ValidationError({"format": [str(exc)]}) from None
    return fmt or None
