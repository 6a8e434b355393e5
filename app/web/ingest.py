"""Ingest endpoints: `POST /data/fast` (queue, 202) and `POST /data/` (store now, 201).

Both take a JSON object, a JSON array, NDJSON (`application/x-ndjson`) or raw lines
(`text/plain`, one log per line). Each item is validated on its own: valid items are
accepted, rejected ones are listed by index with their field errors, and the request
fails (4xx) only when nothing was accepted. The fast path does cheap checks and enqueues;
raw lines are parsed in the drain, not here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
from flask import current_app, jsonify, request
from flask_smorest import Blueprint

from app.pipeline import counters, fanout, intake, store
from app.pipeline.connections import engine, redis_client
from app.pipeline.record import (
    known_format,
    raw_to_data,
)
from app.web import wire
from app.web.errors import APIError
from app.web.openapi import FORMAT_PARAMETER, Queued, Stored, errors

log = logging.getLogger(__name__)
bp = Blueprint("ingest", __name__, description="Send logs.")
INGEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/LogIn"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/LogIn"}},
                ]
            }
        },
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/plain": {"schema": {"type": "string", "description": "One log per line."}},
    },
    "description": "A log, an array of logs, NDJSON, or raw lines (text/plain, parsed by "
    "detected format unless `format` is given).",
}

JSON_TYPES = {"application/json", ""}
NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
}
TEXT_TYPES = {"text/plain"}


def _settings():
    return current_app.extensions["sluice"]


def read_items() -> tuple[list, str]:
    """The request body as a list of items and its kind ("json" or "text")."""
    mimetype = request.mimetype
    try:
        body = wire.body()  # Content-Encoding (gzip, deflate) undone, bounded
    except wire.WireError as exc:
        code = "body_too_large" if exc.status == 413 else "bad_body"
        raise APIError(exc.status, code, exc.message) from None
    if mimetype in TEXT_TYPES:
        text = (line.decode("utf-8", "replace") for line in _lines(body))
        return [line for line in text if line.strip()], "text"
    if mimetype in NDJSON_TYPES:
        items = [_ndjson_line(line) for line in _lines(body) if line.strip()]
    elif mimetype in JSON_TYPES or mimetype.endswith("+json"):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise APIError(400, "invalid_json", f"The body is not valid JSON: {exc}") from None
        items = parsed if isinstance(parsed, list) else [parsed]
    else:
        raise APIError(
            415,
            "unsupported_media_type",
            f"Content-Type {mimetype!r} is not accepted; send application/json, "
            "application/x-ndjson or text/plain.",
        )
    return items, "json"


def _lines(body: bytes) -> list[bytes]:
    r"""Lines split on \n (and \r\n) only: U+2028, \v, \f and the like are text inside a
    line, never a way to forge a second log."""
    return [line.removesuffix(b"\r") for line in body.split(b"\n")]


def _ndjson_line(line: bytes):
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return intake.Invalid({"_schema": [f"Not valid JSON: {exc}"]})


def _check_size(items: list) -> None:
    if not items:
        raise APIError(400, "empty_body", "The body holds no logs.")
    try:
        wire.check_count(len(items))  # MAX_BATCH, as every receiver checks it
    except wire.WireError as exc:
        raise APIError(exc.status, "batch_too_large", exc.message) from None


def _line_item(line: str, fmt: str | None, now: datetime):
    errors = intake.check_line(line)
    return intake.Invalid(errors) if errors else raw_to_data(line, fmt, now)


def _format_arg() -> str | None:
    return known_format(request.args.get("format"))


def _nothing_accepted(rejected: list[dict]) -> APIError:
    return APIError(422, "validation_error", "No log in the request was valid.", rejected=rejected)


def _queue_full(exc: intake.QueueFull) -> APIError:
    return APIError(
        429,
        "queue_full",
        f"The queue holds {exc.length} logs not yet stored (cap "
        f"{_settings().stream_maxlen}); retry shortly.",
        retry_after=5,
    )


@bp.post("/data/fast")
@bp.doc(parameters=[FORMAT_PARAMETER], requestBody=INGEST_BODY)
@bp.response(202, Queued, description="Queued.")
@errors(bp, 400, 413, 415, 422, 429, 503)
def ingest_fast():
    """Validate cheaply, append to the stream, answer 202 with the stream ids."""
    settings = _settings()
    items, kind = read_items()
    _check_size(items)
    r = redis_client(settings.redis_url)
    try:
        if kind == "text":
            receipt = intake.submit_lines(r, settings, items, _format_arg())
        else:
            receipt = intake.submit(r, settings, items)
    except intake.QueueFull as exc:
        raise _queue_full(exc) from None
    if not receipt.ids:
        raise _nothing_accepted(receipt.rejected)
    return jsonify(accepted=len(receipt.ids), ids=receipt.ids, rejected=receipt.rejected), 202


@bp.post("/data/")
@bp.doc(parameters=[FORMAT_PARAMETER], requestBody=INGEST_BODY)
@bp.response(201, Stored, description="Stored.")
@errors(bp, 400, 413, 415, 422, 503)
def ingest_sync():
    """Validate, store and publish now; answer 201 with the database ids."""
    settings = _settings()
    items, kind = read_items()
    _check_size(items)
    if kind == "text":
        fmt, now = _format_arg(), datetime.now(UTC)
        items = [_line_item(line, fmt, now) for line in items]
    good, rejected = intake.validate(items)
    r = redis_client(settings.redis_url)
    if not good:
        counters.add(r, settings, ingest_rejected=len(rejected))
        raise _nothing_accepted(rejected)
    now = datetime.now(UTC)
    rows = [{**log, "timestamp": log["timestamp"] or now} for _, log in good]

    def publish(stored: list[dict]) -> None:
        # Committed is committed: a Redis hiccup must not turn a stored log into a 503
        # that the client would retry (and store twice). Live viewers catch up by id.
        fanout.publish_stored(r, settings, stored)

    with engine(settings.database_url).connect() as conn:
        stored = store.write_in_commit_order(conn, rows, publish)
    ids = [s["id"] for s in stored]
    counters.add(r, settings, ingest_accepted=len(ids), ingest_rejected=len(rejected))
    body = {"stored": len(ids), "ids": ids, "rejected": rejected}
    if len(items) == 1:
        body["id"] = ids[0]
    return jsonify(body), 201
