"""The API's description: `GET /openapi.json` is built by flask-smorest from what each
route declares where it is defined (its arguments, body and answers). This module holds
only what many routes share: the description's text, the error shape, the answers that
no schema of the pipeline describes, and `errors()` to declare a route's error answers."""

from __future__ import annotations

from flask_smorest import Api
from marshmallow import INCLUDE, Schema, fields

from app.web.query_schemas import MAX_LIMIT

DESCRIPTION = f"""Sluice stores logs and lets you search, count, export and watch them live.

**Keys**: when keys are configured every operation below names the scope it needs
(`ingest`, `read` or `admin`; an admin key may do all three). Send the key as
`Authorization: Bearer <key>`, `X-API-Key: <key>`, or HTTP Basic with the key as the
password. No key is 401 (with `WWW-Authenticate`), a key without the scope is 403; both
in the error shape below, with `scope` naming what was needed.

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


REASONS = {
    400: "Invalid parameters or body; `fields` names each.",
    404: "Not found.",
    413: "Too large.",
    415: "Unsupported Content-Type.",
    422: "Nothing in the body was valid; `rejected` lists why per item.",
    429: "The queue is full; retry after `Retry-After` seconds.",
    503: "A dependency (PostgreSQL, Redis) is down; retry after `Retry-After` seconds.",
}


class SluiceApi(Api):
    """flask-smorest's Api with Sluice's one error shape and no generic error answer."""

    ERROR_SCHEMA = Error
    DEFAULT_ERROR_RESPONSE_NAME = None


def configure(app, version: str) -> None:
    """The description's settings (served at /openapi.json, no UI pages)."""
    app.config.update(
        API_TITLE="Sluice",
        API_VERSION=version,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"info": {"description": DESCRIPTION}},
    )


def register_components(api: Api, app) -> None:
    """Schemas the routes refer to by name, and Sluice's own fields as strings."""
    from app.pipeline.filters import MetaFilters, Moment
    from app.pipeline.record import Level, LogSchema, Timestamp
    from app.web.parse import ParseRequest
    from app.web.query_schemas import Cursor

    for field_class in (Level, Timestamp, Moment, Cursor, MetaFilters):
        api.register_field(field_class, "string", None)
    api.spec.components.schema("LogIn", schema=LogSchema)
    api.spec.components.schema("ParseRequest", schema=ParseRequest)
    rule = next(r for r in app.url_map.iter_rules() if r.rule == "/openapi.json")
    api.spec.path(  # served by flask-smorest itself, outside every blueprint
        rule=rule,
        operations={
            "get": {
                "summary": "This description (OpenAPI 3).",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    )


# What every receiver may answer besides its success, in its protocol's own form.
PROTOCOL_REASONS = {
    400: "Refused, with the reason (the other items are kept).",
    413: "Too large.",
    415: "Unsupported Content-Type or Content-Encoding.",
    429: "The queue is full; retry after Retry-After.",
}


def protocol_answers(bp, content_type: str, status: int, description: str, **reasons):
    """Declare the answers of a receiver that speaks its protocol's own forms: its
    success, PROTOCOL_REASONS (or `reasons`, as `s400="..."`; `None` leaves one out),
    and Sluice's JSON 503 when a dependency is down, as everywhere."""
    described = {**PROTOCOL_REASONS, **{int(k[1:]): v for k, v in reasons.items()}}
    described[status] = description
    responses = {
        str(code): {"description": text, "content": {content_type: {"schema": {}}}}
        for code, text in described.items()
        if text is not None
    }
    responses["503"] = {
        "description": REASONS[503],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return bp.doc(responses=responses)


def errors(bp, *statuses: int):
    """Declare a route's error answers (all in the one error shape). Documentation only:
    one `doc`, not an `alt_response` wrapper per status around every call of the view."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return bp.doc(
        responses={str(s): {"description": REASONS[s], "content": error} for s in statuses}
    )


FORMAT_PARAMETER = {
    "in": "query",
    "name": "format",
    "schema": {"type": "string"},
    "description": "For text/plain bodies: parse every line as this format (GET /parse/formats).",
}
