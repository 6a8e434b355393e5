"""Saved searches: a name and a filter set, the one `GET /logs` takes, stored as its
query-string form ({"min_level": ["WARN"], "meta.user_id": ["789"]}).

A filter set is checked and applied by `app.pipeline.filters.LiveFilterSchema` (the query
filters without the time window: an alert brings its own window, a reader their own
range), so a saved search means exactly what the same parameters mean on `/logs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from marshmallow import ValidationError
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from app.pipeline.filters import Filters, LiveFilterSchema

MAX_NAME = 200
MAX_QUERY_CHARS = 8000

metadata = MetaData()

# As migration 0004 creates it (the migration owns the DDL).
searches = Table(
    "searches",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", String(MAX_NAME)),
    Column("filters", JSONB),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)


def normalize(raw) -> dict[str, list[str]]:
    """A filter set as given (a mapping of a name to a string or a list of strings, or a
    query string `min_level=WARN&q=x`) as {name: [values]}, empty values left out, names
    sorted. Raises ValidationError for anything of another shape."""
    if isinstance(raw, str):
        if len(raw) > MAX_QUERY_CHARS:
            raise ValidationError(f"At most {MAX_QUERY_CHARS} characters.")
        pairs: dict[str, list[str]] = {}
        for name, value in parse_qsl(raw.lstrip("?"), keep_blank_values=False):
            pairs.setdefault(name, []).append(value)
        raw = pairs
    if not isinstance(raw, Mapping):
        raise ValidationError("Give an object of filters (as GET /logs takes) or a query string.")
    out: dict[str, list[str]] = {}
    for name in sorted(raw):
        value = raw[name]
        values = value if isinstance(value, list) else [value]
        if not isinstance(name, str) or not all(isinstance(v, str) for v in values):
            raise ValidationError({name: ["Give a string or a list of strings."]})
        kept = [v for v in values if v != ""]
        if kept:
            out[name] = kept
    return out


def to_filters(filter_set: Mapping[str, list[str]]) -> Filters:
    """The Filters a stored or given filter set stands for; ValidationError names each
    bad parameter, as `GET /logs` would."""
    return LiveFilterSchema().load(dict(filter_set))


def checked(raw) -> dict[str, list[str]]:
    """`normalize` then `to_filters`: the filter set to store, known to be valid. The
    problems are one list of "parameter: problem" lines (the set is one field of a body)."""
    try:
        filter_set = normalize(raw)
        to_filters(filter_set)
    except ValidationError as exc:
        raise ValidationError(_lines(exc.messages)) from None
    return filter_set


def _lines(messages, prefix: str = "") -> list[str]:
    if isinstance(messages, dict):
        return [line for k, v in messages.items() for line in _lines(v, f"{prefix}{k}: ")]
    if isinstance(messages, list):
        return [line for m in messages for line in _lines(m, prefix)]
    return [f"{prefix}{messages}"]


def query_string(filter_set: Mapping[str, list[str]]) -> str:
    """The filter set as the query string of `GET /logs` (and of the UI's search view)."""
    return urlencode([(k, v) for k in sorted(filter_set) for v in filter_set[k]])


def ui_link(public_url: str, filter_set: Mapping[str, list[str]]) -> str:
    """Where the web UI opens this search (absolute when PUBLIC_URL is set)."""
    query = query_string(filter_set)
    return f"{public_url.rstrip('/')}/{'?' + query if query else ''}#search"


def to_json(row) -> dict:
    """A stored search as the API returns it."""
    return {
        "id": row["id"],
        "name": row["name"],
        "filters": dict(sorted(row["filters"].items())),  # jsonb keeps no key order
        "query": query_string(row["filters"]),
        "link": ui_link("", row["filters"]),
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
