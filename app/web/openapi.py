"""`GET /openapi.json`: the whole HTTP API in OpenAPI 3, built with apispec from the
marshmallow schemas the endpoints validate with (query parameters, the log body) plus a
few schemas here that only describe answers. The WebSocket is described in text."""

from __future__ import annotations

from functools import cache

import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response
from marshmallow import INCLUDE, Schema, fields

from app import __version__
from app.pipeline.record import Level, LogSchema, Timestamp
from app.web.parse import ParseRequest
from app.web.query_schemas import (
    MAX_LIMIT,
    Cursor,
    ExportSchema,
    ListSchema,
    LogOut,
    LogPage,
    MetaFilters,
    Moment,
    Stats,
    StatsSchema,
)

bp = Blueprint("openapi", __name__)

DESCRIPTION = f"""Sluice stores logs and lets you search, count, export and watch them live.

**Errors** have one shape: `{{"error": "<code>", "message": "...", "status": <n>,
"fields": {{"<parameter>": ["<problem>"]}}}}`; `fields` appears when input was invalid,
`rejected` (per item) for batches; 503 answers carry `Retry-After`.

**Filters** (`GET /logs`, `/logs/stats`, `/logs/export`): `level` (repeat or comma-separate;
aliases like `warning` accepted), `min_level`, `source`, `application` (repeat = any of),
`since`/`until` (ISO 8601, epoch seconds, or `15m`/`24h`/`7d` before now; `until`
exclusive), `q` (full text: words must all occur, `"a phrase"`, `-word`, `or`), `contains`
(case-insensitive substring), and **`meta.<key>=<value>`** for metadata (nested keys with
dots: `meta.http.status=500`; a value that reads as a JSON number/boolean/null matches it
and its string form; several AND together). Unknown parameters are refused by name.
Pages: `limit` (default 100, at most {MAX_LIMIT}) and the opaque `next_cursor`.

**Live: `WS /ws/logs`** (WebSocket). Query string: the same `level`, `min_level`, `source`,
`application`, `contains` filters, and `after=<id>` to resume without gap or duplicate.
Server to client (JSON text frames): `{{"type": "logs", "logs": [<log>...]}}`,
`{{"type": "dropped", "count": n}}` (this client was too slow), `{{"type": "filters",
"filters": {{...}}}}`, `{{"type": "ping"}}`, `{{"type": "error", "error": "...", "fields":
{{...}}}}`. Client to server: `{{"type": "filter", "level": [...], "min_level": ...,
"source": ..., "application": ..., "contains": ...}}` replaces the filters.
"""


class Open(Schema):
    """A described answer that may carry more keys than listed."""

    class Meta:
        unknown = INCLUDE


class Error(Open):
    """The one error shape."""

    error = fields.String(required=True)
    message = fields.String(required=True)
    status = fields.Integer(required=True)
    problems = fields.Dict(
        data_key="fields", metadata={"description": "Parameter or field -> problems."}
    )
    rejected = fields.List(fields.Dict(), metadata={"description": "Rejected items by index."})


class Queued(Open):
    """`POST /data/fast` accepted logs into the queue."""

    accepted = fields.Integer(required=True)
    ids = fields.List(fields.String(), required=True, metadata={"description": "Stream ids."})
    rejected = fields.List(fields.Dict(), required=True)


class Stored(Open):
    """`POST /data/` stored logs."""

    stored = fields.Integer(required=True)
    ids = fields.List(fields.Integer(), required=True)
    rejected = fields.List(fields.Dict(), required=True)
    id = fields.Integer(metadata={"description": "The id, when the body held one log."})


class Parsed(Open):
    """`POST /parse/auto`: one result per line."""

    results = fields.List(fields.Dict(), required=True)
    parsed = fields.Integer(required=True)


class Formats(Open):
    """The formats detected, each with a description and an example line."""

    formats = fields.List(fields.Dict(), required=True)


class Health(Open):
    """Is each dependency answering."""

    status = fields.String(required=True)
    api = fields.String(required=True)
    redis = fields.String(required=True)
    database = fields.String(required=True)
    websocket_connections = fields.Integer(required=True)
    version = fields.String(required=True)


class QueueStatus(Open):
    """How far behind the queue is."""

    queue_name = fields.String(required=True)
    length = fields.Integer(required=True)
    pending_messages = fields.Integer(required=True)
    lag = fields.Integer(allow_none=True, required=True)
    dead_letters = fields.Integer(required=True)


def _json(schema: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    reasons = {
        400: "Invalid parameters or body; `fields` names each.",
        404: "Not found.",
        413: "Too large.",
        415: "Unsupported Content-Type.",
        422: "Nothing in the body was valid; `rejected` lists why per item.",
        429: "The queue is full; retry after `Retry-After` seconds.",
        503: "A dependency (PostgreSQL, Redis) is down; retry after `Retry-After` seconds.",
    }
    return {str(s): _json("Error", reasons[s]) for s in statuses}


def _query(schema: Schema) -> list[dict]:
    return [{"in": "query", "schema": schema}]


def _ingest_body() -> dict:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [{"$ref": "#/components/schemas/LogIn"}, _log_array()]}
            },
            "text/plain": {"schema": {"type": "string", "description": "One log per line."}},
        },
        "description": "A log, an array of logs, NDJSON (application/x-ndjson), or raw lines "
        "(text/plain, parsed by detected format unless `format` is given).",
    }


def _log_array() -> dict:
    return {"type": "array", "items": {"$ref": "#/components/schemas/LogIn"}}


_FORMAT = {
    "in": "query",
    "name": "format",
    "schema": {"type": "string"},
    "description": "For text/plain bodies: parse every line as this format (GET /parse/formats).",
}


def _paths(spec: APISpec) -> None:
    filters = {"exclude": ("meta",)}
    spec.path(
        path="/logs",
        operations={
            "get": {
                "summary": "Logs matching the filters, a page at a time (newest first).",
                "parameters": _query(ListSchema(**filters)),
                "responses": {"200": _json("LogPage", "A page."), **_errors(400, 503)},
            }
        },
    )
    spec.path(
        path="/logs/{log_id}",
        operations={
            "get": {
                "summary": "One log.",
                "parameters": [
                    {
                        "in": "path",
                        "name": "log_id",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0},
                    }
                ],
                "responses": {"200": _json("LogOut", "The log."), **_errors(404, 503)},
            }
        },
    )
    spec.path(
        path="/logs/stats",
        operations={
            "get": {
                "summary": "Counts per time bucket and level, and the top sources/applications.",
                "parameters": _query(StatsSchema(**filters)),
                "responses": {"200": _json("Stats", "The counts."), **_errors(400, 503)},
            }
        },
    )
    spec.path(
        path="/logs/export",
        operations={
            "get": {
                "summary": "Every log matching the filters, as NDJSON, streamed.",
                "parameters": _query(ExportSchema(**filters)),
                "responses": {
                    "200": {
                        "description": "One JSON log per line.",
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, 503),
                },
            }
        },
    )
    _ingest_paths(spec)
    _other_paths(spec)


def _ingest_paths(spec: APISpec) -> None:
    spec.path(
        path="/data/fast",
        operations={
            "post": {
                "summary": "Validate and queue logs; stored within seconds (202).",
                "parameters": [_FORMAT],
                "requestBody": _ingest_body(),
                "responses": {
                    "202": _json("Queued", "Queued."),
                    **_errors(400, 413, 415, 422, 429, 503),
                },
            }
        },
    )
    spec.path(
        path="/data/",
        operations={
            "post": {
                "summary": "Validate and store logs now (201).",
                "parameters": [_FORMAT],
                "requestBody": _ingest_body(),
                "responses": {
                    "201": _json("Stored", "Stored."),
                    **_errors(400, 413, 415, 422, 503),
                },
            }
        },
    )
    spec.path(
        path="/parse/auto",
        operations={
            "post": {
                "summary": "Detect the format of raw lines and parse them; nothing is stored.",
                "parameters": [_FORMAT],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": "ParseRequest"},
                        "text/plain": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": _json("Parsed", "One result per line."),
                    **_errors(400, 413, 422),
                },
            }
        },
    )


def _other_paths(spec: APISpec) -> None:
    simple = {
        "/parse/formats": ("Formats", "The formats Sluice detects.", ()),
        "/health": ("Health", "200 when PostgreSQL and Redis answer.", ()),
        "/queue/status": ("QueueStatus", "Queue length, lag, pending, dead letters.", (503,)),
    }
    for path, (schema, summary, errors) in simple.items():
        responses = {"200": _json(schema, summary), **_errors(*errors)}
        if path == "/health":
            responses["503"] = _json("Health", "A dependency is down (same body).")
        spec.path(path=path, operations={"get": {"summary": summary, "responses": responses}})
    spec.path(
        path="/metrics",
        operations={
            "get": {
                "summary": "Counters and queue gauges in Prometheus' text format.",
                "responses": {
                    "200": {"description": "", "content": {"text/plain": {"schema": {}}}},
                    **_errors(503),
                },
            }
        },
    )
    spec.path(
        path="/openapi.json",
        operations={
            "get": {
                "summary": "This description.",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    )


@cache
def build_spec() -> bytes:
    """The OpenAPI document as JSON bytes (built once per process: it never changes)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Sluice",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": DESCRIPTION},
    )
    for field_class in (Level, Timestamp, Moment, Cursor, MetaFilters):
        plugin.map_to_openapi_type(field_class, "string", None)
    named = {
        "LogIn": LogSchema,
        "LogOut": LogOut,
        "LogPage": LogPage,
        "Stats": Stats,
        "Error": Error,
        "Queued": Queued,
        "Stored": Stored,
        "ParseRequest": ParseRequest,
        "Parsed": Parsed,
        "Formats": Formats,
        "Health": Health,
        "QueueStatus": QueueStatus,
    }
    for name, schema in named.items():
        spec.components.schema(name, schema=schema)
    _paths(spec)
    return orjson.dumps(spec.to_dict())


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI description of this API."""
    return Response(build_spec(), mimetype="application/json")
