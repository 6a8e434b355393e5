"""The one filter rule: which logs a reader wants, for the query API and the live view.

`FilterSchema` reads the filters from a query string (or a live client's message);
`Filters` applies them, as SQL (`where`, for queries and the live catch-up) and in
Python (`match`, for logs as they are published). The live filter is the query filter
without the time window (`LiveFilterSchema`). Full text (`q`) has no Python twin: the
live view asks PostgreSQL (`search_messages`), so both use the database's own rule.
tests/test_filter_rule.py runs one table of cases through `match`, `where` and the
browser's mirror of it (app/static/js/filters.js).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)
from sqlalchemy import ColumnElement, and_, bindparam, func, literal_column, or_, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from app.pipeline.record import MAX_NAME_CHARS, Level, logs
from parsers.fields import LEVELS, levels_at_least, parse_timestamp

MAX_TEXT = 500
MAX_VALUES = 50
MAX_META = 20
MAX_META_DEPTH = 8
META_PREFIX = "meta."
# Must match the expression of the full-text index in migration 0002 exactly.
TS_CONFIG = literal_column("'simple'::regconfig")


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("Contains a NUL byte.")


def _text(max_chars: int = MAX_TEXT) -> list:
    return [validate.Length(min=1, max=max_chars), _no_nul]


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
    """Which logs a reader wants; None/empty means "any". Hashable, so the live fan-out
    filters a batch once per distinct filter, not once per client."""

    levels: tuple[str, ...] | None = None
    sources: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    contains: str | None = None
    meta: tuple[tuple[tuple[str, ...], tuple], ...] = ()

    def where(self) -> ColumnElement[bool]:
        """These filters as a SQL condition on `logs`."""
        parts: list[ColumnElement[bool]] = []
        if self.levels is not None and len(self.levels) < len(LEVELS):
            parts.append(logs.c.level.in_(self.levels))
        if self.sources:
            parts.append(logs.c.source.in_(self.sources))
        if self.applications:
            parts.append(logs.c.application.in_(self.applications))
        if self.since is not None:
            parts.append(logs.c.timestamp >= self.since)
        if self.until is not None:
            parts.append(logs.c.timestamp < self.until)
        if self.q:
            parts.append(full_text(logs.c.message, self.q))
        if self.contains:
            parts.append(logs.c.message.ilike(f"%{_escape_like(self.contains)}%", escape="\\"))
        parts.extend(meta_condition(path, values) for path, values in self.meta)
        return and_(true(), *parts)

    def match(self, log: dict) -> bool:
        """Does a stored log (its JSON form) pass every filter but `q`?"""
        if self.levels is not None and log["level"] not in self.levels:
            return False
        if self.sources and log["source"] not in self.sources:
            return False
        if self.applications and log["application"] not in self.applications:
            return False
        if self.contains and self.contains.lower() not in log["message"].lower():
            return False
        if self.since is not None or self.until is not None:
            stamp = datetime.fromisoformat(log["timestamp"])
            if (self.since and stamp < self.since) or (self.until and stamp >= self.until):
                return False
        return all(_meta_holds(log["metadata"], path, values) for path, values in self.meta)

    def as_dict(self) -> dict:
        """The filters as JSON (echoed to a live client after a change)."""
        out = {
            "level": list(self.levels) if self.levels is not None else None,
            "source": list(self.sources) or None,
            "application": list(self.applications) or None,
            "q": self.q,
            "contains": self.contains,
        }
        if self.meta:
            out["meta"] = {".".join(path): list(values) for path, values in self.meta}
        return out


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _nest(path: tuple[str, ...], value) -> dict:
    for key in reversed(path[1:]):
        value = {key: value}
    return {path[0]: value}


def meta_condition(path: tuple[str, ...], candidates: tuple) -> ColumnElement[bool]:
    """`metadata` holds one of `candidates` at `path`, alone or in an array. Written as
    containment (`@>`), which the GIN (jsonb_path_ops) index of migration 0002 serves."""
    docs = [_nest(path, v) for c in candidates for v in (c, [c])]
    return or_(*(logs.c.metadata.contains(doc) for doc in docs))


def _same_json(a, b) -> bool:
    """JSON equality as jsonb has it: true/false are not numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _meta_holds(metadata: dict, path: tuple[str, ...], candidates: tuple) -> bool:
    """`meta_condition` in Python: the value at `path` is a candidate or an array holding one."""
    value = metadata
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    found = value if isinstance(value, list) else [value]
    return any(_same_json(v, c) for v in found for c in candidates)


def full_text(message, q: str) -> ColumnElement[bool]:
    """`message` matches the web-search style query `q` (words, "phrases", -not, or)."""
    query = func.websearch_to_tsquery(TS_CONFIG, q)
    return func.to_tsvector(TS_CONFIG, message).op("@@")(query)


def search_messages(conn, q: str, messages: list[str]) -> list[bool]:
    """For each message, does it match `q`? Asked of PostgreSQL, with the same
    expression as `where`, without touching the table."""
    if not messages:
        return []
    given = (
        func.unnest(bindparam("messages", messages, type_=ARRAY(Text)))
        .table_valued("message", with_ordinality="n")
        .render_derived(name="given")
    )
    statement = select(full_text(given.c.message, q)).order_by(given.c.n)
    return list(conn.execute(statement).scalars())


class FilterSchema(Schema):
    """The filters every `/logs` endpoint and the live view take, from a query string
    (a MultiDict) or a mapping of lists. Unknown parameters are refused by name."""

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

    @pre_load
    def _from_query(self, data, **kwargs):
        return query_data(self, getattr(data, "data", data))  # webargs wraps the MultiDict

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


class LiveFilterSchema(FilterSchema):
    """The live view's filters: the query filters without the time window."""

    class Meta:
        unknown = RAISE
        exclude = ("since", "until")

    @post_load
    def _build(self, data, **kwargs) -> Filters:
        return self.filters(data)

    @classmethod
    def from_message(cls, message: dict) -> dict:
        """A client's `{"type": "filter", ...}` message as the query data it stands for."""
        data = {}
        for name, value in message.items():
            if name == "type" or value is None or value == "":
                continue
            data[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return data


def _values(raw, name: str) -> list[str]:
    if hasattr(raw, "getlist"):
        values = raw.getlist(name)
    else:
        value = raw[name]
        values = value if isinstance(value, list | tuple) else [value]
    return [v for v in values if v != ""]


def query_data(schema: Schema, raw: Mapping) -> dict:
    """Query-string data as the schema loads it: lists from repeats (and commas for
    level), `meta.*` collected, empty values ignored, a single value given twice refused."""
    data, meta, errors = {}, {}, {}
    for name in raw:
        values = _values(raw, name)
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
    return data
