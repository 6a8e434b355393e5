"""The query string of the `/logs` endpoints, validated at the edge, and the shapes they
answer with (the answer schemas document the API in /openapi.json).

Parameters, in short (docs/query.md has the long form):
    level=ERROR&level=WARN | level=ERROR,WARN   min_level=WARN   source=a&source=b
    application=x   since/until=15m|24h|2026-11-28T10:00:00Z   q=word "a phrase"
    contains=substr   meta.user_id=789   meta.http.status=500   limit   cursor   order
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from app.pipeline.record import MAX_NAME_CHARS, Level
from parsers.fields import LEVELS, levels_at_least, parse_timestamp

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_TEXT = 500
MAX_VALUES = 50
MAX_META = 20
MAX_META_DEPTH = 8
META_PREFIX = "meta."
INTERVALS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
DEFAULT_STATS_WINDOW = timedelta(hours=24)
AUTO_BUCKETS = 360
DEFAULT_TOP = 10
MAX_TOP = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BUCKETS = 2000

_RELATIVE = re.compile(r"^(\d{1,9})([smhdw])$")
# How since/until may be written, for the OpenAPI description.
MOMENT_FORMS = [
    {"type": "string", "format": "date-time", "description": "ISO 8601"},
    {"type": "string", "pattern": r"^[0-9]{1,9}[smhdw]$", "description": "before now: 15m, 24h"},
    {"type": "string", "pattern": r"^[0-9]{9,13}$", "description": "epoch seconds or ms"},
]
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("Contains a NUL byte.")


def _text(max_chars: int = MAX_TEXT) -> list:
    return [validate.Length(min=1, max=max_chars), _no_nul]


class Moment(fields.Field):
    """A point in time: ISO 8601 (UTC unless a zone is given), epoch seconds/ms, or a span
    before now: `30s`, `15m`, `24h`, `7d`, `2w`."""

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("Not a time.")
        match = _RELATIVE.match(value.strip())
        try:
            if match:
                span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
                return datetime.now(UTC) - span
            parsed = parse_timestamp(value)
            if parsed is not None:
                return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of the range of dates.") from None
        raise ValidationError(
            "Not a time: use ISO 8601 (2026-11-28T10:00:00Z), epoch seconds, "
            "or a span before now like 15m, 24h, 7d."
        )


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last (timestamp, id) sent, and the order it was sent in."""

    timestamp: datetime
    id: int
    order: str


def encode_cursor(position: Position) -> str:
    """The opaque cursor for `position` (base64url of a small JSON object)."""
    raw = json.dumps(
        {"t": position.timestamp.isoformat(), "i": position.id, "o": position.order},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


class Cursor(fields.Field):
    """The `next_cursor` of a previous page, given back unchanged."""

    def _deserialize(self, value, attr, data, **kwargs) -> Position:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            decoded = json.loads(raw)
            stamp = datetime.fromisoformat(decoded["t"])
            ident, order = decoded["i"], decoded["o"]
            stamp = stamp.astimezone(UTC) if stamp.tzinfo is not None else None
        except (binascii.Error, ValueError, TypeError, KeyError, OverflowError):
            raise ValidationError("Not a cursor this API gave out.") from None
        valid = (
            stamp is not None
            and isinstance(ident, int)
            and not isinstance(ident, bool)
            and 0 <= ident < 2**63
            and order in ("desc", "asc")
        )
        if not valid:
            raise ValidationError("Not a cursor this API gave out.")
        return Position(stamp, ident, order)


def meta_value(raw: str) -> list:
    """What `meta.k=raw` matches: the JSON number/true/false/null it spells and the string
    itself, or only the string (`789` matches 789 and "789"; `abc` matches "abc")."""
    try:
        parsed = json.loads(raw, parse_constant=lambda name: raw)
    except ValueError:
        return [raw]
    if isinstance(parsed, bool) or parsed is None or isinstance(parsed, int):
        return [parsed, raw]
    if isinstance(parsed, float) and math.isfinite(parsed):
        return [parsed, raw]
    return [raw]


class MetaFilters(fields.Field):
    """`meta.<key>[.<key>...]=<value>` parameters, collected as {param name: [values]}.

    Loads to a list of (path, candidate values): one entry per value given."""

    def _deserialize(self, value, attr, data, **kwargs) -> list[tuple[tuple[str, ...], list]]:
        if not isinstance(value, dict):
            raise ValidationError("Use meta.<key>=<value>.")
        if len(value) > MAX_META:
            raise ValidationError(f"At most {MAX_META} meta.* parameters.")
        errors, out = {}, []
        for name, values in value.items():
            path = tuple(name[len(META_PREFIX) :].split("."))
            problem = _meta_problem(path, values)
            if problem:
                errors[name] = [problem]
            else:
                out.extend((path, meta_value(v)) for v in values)
        if errors:
            raise ValidationError(errors)
        return out


def _meta_problem(path: tuple[str, ...], values: list[str]) -> str | None:
    if not all(path) or len(path) > MAX_META_DEPTH:
        return f"Name a key: meta.key or meta.outer.inner (at most {MAX_META_DEPTH} levels)."
    if any(len(k) > MAX_NAME_CHARS or "\x00" in k for k in path):
        return f"Keys are at most {MAX_NAME_CHARS} characters, without NUL."
    if any(len(v) > MAX_TEXT or "\x00" in v for v in values):
        return f"Values are at most {MAX_TEXT} characters, without NUL."
    return None


@dataclass(frozen=True)
class Filters:
    """Which logs a query is about; None/empty means "any"."""

    levels: tuple[str, ...] | None = None
    sources: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    contains: str | None = None
    meta: tuple[tuple[tuple[str, ...], tuple], ...] = ()


class FilterSchema(Schema):
    """The filters every `/logs` endpoint takes. Unknown parameters are refused by name."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "Unknown parameter."}

    level = fields.List(
        Level(metadata={"enum": list(LEVELS)}),
        validate=validate.Length(max=MAX_VALUES),
        metadata={"description": "Levels to include (repeat, or comma-separate)."},
    )
    min_level = Level(
        metadata={"description": "This level and every higher one.", "enum": list(LEVELS)}
    )
    source = fields.List(
        fields.String(validate=_text(MAX_NAME_CHARS)),
        validate=validate.Length(max=MAX_VALUES),
        metadata={"description": "Sources to include (repeat for several)."},
    )
    application = fields.List(
        fields.String(validate=_text(MAX_NAME_CHARS)),
        validate=validate.Length(max=MAX_VALUES),
        metadata={"description": "Applications to include (repeat for several)."},
    )
    since = Moment(metadata={"description": "From (inclusive).", "anyOf": MOMENT_FORMS})
    until = Moment(metadata={"description": "Up to (exclusive).", "anyOf": MOMENT_FORMS})
    q = fields.String(
        validate=_text(),
        metadata={"description": 'Full text: words (all must occur), "quoted phrases", -not.'},
    )
    contains = fields.String(
        validate=_text(), metadata={"description": "Case-insensitive substring of the message."}
    )
    meta = MetaFilters()

    @validates_schema
    def _consistent(self, data, **kwargs):
        if data.get("level") and data.get("min_level"):
            raise ValidationError("Give level or min_level, not both.", field_name="level")
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise ValidationError("Must be before until.", field_name="since")

    def handle_error(self, error, data, *, many, **kwargs):
        """Report meta.* problems under the parameter's own name, not under `meta`."""
        messages = dict(error.messages)
        nested = messages.pop("meta", None)
        if isinstance(nested, dict):
            messages.update(nested)
        elif nested:
            messages["meta"] = nested
        raise ValidationError(messages)

    @staticmethod
    def filters(data: dict) -> Filters:
        """The loaded parameters as Filters."""
        levels = data.get("level")
        if data.get("min_level"):
            levels = levels_at_least(data["min_level"])
        if levels is not None:
            levels = tuple(sorted(set(levels), key=LEVELS.index))
        return Filters(
            levels=levels,
            sources=tuple(data.get("source") or ()),
            applications=tuple(data.get("application") or ()),
            since=data.get("since"),
            until=data.get("until"),
            q=data.get("q"),
            contains=data.get("contains"),
            meta=tuple((path, tuple(values)) for path, values in data.get("meta") or ()),
        )


class ListSchema(FilterSchema):
    """`GET /logs`: the filters plus paging."""

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Logs per page (default {DEFAULT_LIMIT}, max {MAX_LIMIT})."},
    )
    cursor = Cursor(metadata={"description": "`next_cursor` from the previous page."})
    order = fields.String(
        validate=validate.OneOf(("desc", "asc")),
        metadata={"description": "desc = newest first (default), asc = oldest first."},
    )

    @validates_schema
    def _cursor_order(self, data, **kwargs):
        cursor, order = data.get("cursor"), data.get("order")
        if cursor and order and cursor.order != order:
            raise ValidationError(
                f"This cursor continues an order={cursor.order} listing.", field_name="cursor"
            )

    @post_load
    def _build(self, data, **kwargs) -> dict:
        cursor = data.get("cursor")
        order = data.get("order") or (cursor.order if cursor else "desc")
        return {
            "filters": self.filters(data),
            "limit": data["limit"],
            "cursor": cursor,
            "order": order,
        }


class ExportSchema(FilterSchema):
    """`GET /logs/export`: the filters, an order and an optional limit (no cap)."""

    limit = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Stop after this many logs (default: all that match)."},
    )
    order = fields.String(
        load_default="desc",
        validate=validate.OneOf(("desc", "asc")),
        metadata={"description": "desc = newest first (default), asc = oldest first."},
    )

    @post_load
    def _build(self, data, **kwargs) -> dict:
        return {"filters": self.filters(data), "limit": data.get("limit"), "order": data["order"]}


class StatsSchema(FilterSchema):
    """`GET /logs/stats`: the filters plus a bucket width; the window defaults to 24 h."""

    interval = fields.String(
        validate=validate.OneOf(tuple(INTERVALS)),
        metadata={"description": f"Bucket width; default: the finest giving <= {AUTO_BUCKETS}."},
    )
    top = fields.Integer(
        load_default=DEFAULT_TOP,
        validate=validate.Range(min=0, max=MAX_TOP),
        metadata={
            "description": f"Length of the top lists (default {DEFAULT_TOP}); 0 skips them, "
            "which halves the work when only the histogram is wanted."
        },
    )

    @post_load
    def _build(self, data, **kwargs) -> dict:
        until = data.get("until") or datetime.now(UTC)
        since = data.get("since") or until - DEFAULT_STATS_WINDOW
        if since >= until:
            raise ValidationError({"since": ["Must be before until."]})
        filters = self.filters({**data, "since": since, "until": until})
        name = data.get("interval") or auto_interval(since, until)
        return {"filters": filters, "interval": name, "top": data["top"]}


def bucket_count(since: datetime, until: datetime, step: timedelta) -> int:
    """How many `step` buckets, aligned to the epoch, cover [since, until)."""
    first = bucket_start(since, step)
    return -((first - until) // step)


def bucket_start(moment: datetime, step: timedelta) -> datetime:
    """The start of the bucket holding `moment` (buckets aligned to 1970-01-01 UTC)."""
    return EPOCH + ((moment - EPOCH) // step) * step


def auto_interval(since: datetime, until: datetime) -> str:
    """The finest interval giving at most AUTO_BUCKETS buckets (else the coarsest)."""
    for name, step in INTERVALS.items():
        if bucket_count(since, until, step) <= AUTO_BUCKETS:
            return name
    return next(reversed(INTERVALS))


def load_args(schema: Schema, args) -> dict:
    """Load a query-string MultiDict: lists from repeats (and commas for level), `meta.*`
    collected, empty values ignored, a single-valued parameter given twice refused."""
    data, meta, errors = {}, {}, {}
    for name in args:
        values = [v for v in args.getlist(name) if v != ""]
        if not values:
            continue
        if name.startswith(META_PREFIX):
            meta[name] = values
        elif name == "meta":
            errors[name] = ["Use meta.<key>=<value>, e.g. meta.user_id=789."]
        elif isinstance(schema.fields.get(name), fields.List):
            if name == "level":
                values = [part for v in values for part in v.split(",") if part.strip()]
            data[name] = values
        elif len(values) > 1:
            errors[name] = ["Give this parameter once."]
        else:
            data[name] = values[0]
    if errors:
        raise ValidationError(errors)
    if meta:
        data["meta"] = meta
    return schema.load(data)


# ---------------------------------------------------------------- answers (for the docs)


class LogOut(Schema):
    """One stored log as the API returns it."""

    id = fields.Integer(required=True)
    timestamp = fields.DateTime(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    source = fields.String(allow_none=True, required=True)
    application = fields.String(allow_none=True, required=True)
    message = fields.String(required=True)
    metadata = fields.Dict(required=True)
    stream_id = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)


class LogPage(Schema):
    """A page of logs; `next_cursor` is null on the last page."""

    logs = fields.List(fields.Nested(LogOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    limit = fields.Integer(required=True)


class Bucket(Schema):
    """One histogram bucket: its start and the logs in it per level."""

    time = fields.DateTime(required=True)
    total = fields.Integer(required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class SourceCount(Schema):
    source = fields.String(required=True)
    count = fields.Integer(required=True)


class ApplicationCount(Schema):
    application = fields.String(required=True)
    count = fields.Integer(required=True)


class Stats(Schema):
    """Counts per bucket and level over [since, until), and the busiest sources/apps."""

    interval = fields.String(required=True, validate=validate.OneOf(tuple(INTERVALS)))
    since = fields.DateTime(required=True)
    until = fields.DateTime(required=True)
    total = fields.Integer(required=True)
    buckets = fields.List(fields.Nested(Bucket), required=True)
    levels = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    top_sources = fields.List(fields.Nested(SourceCount), required=True)
    top_applications = fields.List(fields.Nested(ApplicationCount), required=True)
