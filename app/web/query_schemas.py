"""The query string of the `/logs` endpoints (the filters of `app.pipeline.filters` plus
paging, windows and buckets), and the shapes they answer with (for /openapi.json).

Parameters, in short (docs/query.md has the long form):
    level=ERROR&level=WARN | level=ERROR,WARN   min_level=WARN   source=a&source=b
    application=x   since/until=15m|24h|2026-11-28T10:00:00Z   q=word "a phrase"
    contains=substr   meta.user_id=789   meta.http.status=500   limit   cursor   order
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from app.pipeline.filters import FilterSchema
from parsers.fields import LEVELS

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
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
