"""Ingest endpoints: `POST /data/fast` (queue, 202) and `POST /data/` (store now, 201).

Both take a JSON object, a JSON array, NDJSON (`application/x-ndjson`) or raw lines
(`text/plain`, one log per line). Each item is validated on its own: valid items are
accepted, rejected ones are listed by index with their field errors, and the request
fails (4xx) only when nothing was accepted. The fast path does cheap checks and enqueues;
raw lines are parsed in the drain, not here.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import orjson
import redis
from flask import current_app, request
from flask_smorest import Blueprint

from app.pipeline import counters, fanout, idempotency, intake, jsoncodec, store
from app.pipeline.connections import engine, redis_client
from app.pipeline.record import Limits, known_format, parse_raw
from app.web import wire
from app.web.errors import APIError
from app.web.openapi import FORMAT_PARAMETER, Error, Queued, Stored, errors

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
JSON = "application/json"
IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": idempotency.HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_CHARS},
    "description": "A key of the client's choosing (kept 24 h): a retry with the same key "
    "stores nothing twice and is answered as the first request was; the same key with a "
    "different request is a 422.",
}


def _settings():
    return current_app.extensions["sluice"]


def read_items() -> tuple[list, str, bytes]:
    """The request body as a list of items, its kind ("json" or "text"), and the body."""
    mimetype = request.mimetype
    try:
        body = wire.body()  # Content-Encoding (gzip, deflate) undone, bounded
    except wire.WireError as exc:
        code = "body_too_large" if exc.status == 413 else "bad_body"
        raise APIError(exc.status, code, exc.message) from None
    if mimetype in TEXT_TYPES:
        text = (line.decode("utf-8", "replace") for line in _lines(body))
        return [line for line in text if line.strip()], "text", body
    if mimetype in NDJSON_TYPES:
        items = [_ndjson_line(line) for line in _lines(body) if line.strip()]
    elif mimetype in JSON_TYPES or mimetype.endswith("+json"):
        items = _json_items(body)
    else:
        raise APIError(
            415,
            "unsupported_media_type",
            f"Content-Type {mimetype!r} is not accepted; send application/json, "
            "application/x-ndjson or text/plain.",
        )
    return items, "json", body


def _json_items(body: bytes) -> list:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        deep = str(exc).startswith("depth limit")
        if deep and body.lstrip().startswith(b"{"):  # one log, too deep: refused as an item
            return [_json_item(body)]
        parts = split_array(body)
        if parts is None:
            raise APIError(400, "invalid_json", f"The body is not valid JSON: {exc}") from None
        # An array whose shape is sound but one item is not (nested past the decoder's
        # limit, a number no double holds, bad UTF-8, a lone surrogate): decode the items
        # one by one, so that one is refused at its index and its neighbours keep their
        # place.
        return [_json_item(part) for part in parts]
    return parsed if isinstance(parsed, list) else [parsed]


# A JSON string (escapes included), or one of the characters that shape an array.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')


def split_array(body: bytes) -> list[bytes] | None:
    """The elements of a top-level JSON array as their bytes, found without decoding
    them (so without recursion, however deep they nest); None when `body` is not one
    array with nothing after it. The elements are not checked: decode each."""
    text = body.strip()
    if not text.startswith(b"["):
        return None
    parts, depth, start, end = [], 0, 1, None
    for token in _TOKEN.finditer(text):
        char = token.group()[:1]
        if char == b'"':
            continue
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            depth -= 1
            if depth == 0:
                parts.append(text[start : token.start()])
                end = token.end()
                break
        elif depth == 1:  # a comma between elements
            parts.append(text[start : token.start()])
            start = token.end()
    if end is None or text[end:].strip():
        return None
    if len(parts) == 1 and not parts[0].strip():  # []
        return []
    return parts


def _json_item(part: bytes):
    try:
        return orjson.loads(part)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):
            limit = _settings().max_json_depth
            problem = f"Nested deeper than the decoder allows; the limit is {limit} levels"
            return intake.Invalid({"_schema": [problem + " (MAX_JSON_DEPTH)."]})
        return intake.Invalid({"_schema": [f"Not valid JSON: {exc}"]})


def _lines(body: bytes) -> list[bytes]:
    r"""Lines split on \n (and \r\n) only: U+2028, \v, \f and the like are text inside a
    line, never a way to forge a second log."""
    return [line.removesuffix(b"\r") for line in body.split(b"\n")]


def _ndjson_line(line: bytes):
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):
            return _json_item(line)
        return intake.Invalid({"_schema": [f"Not valid JSON: {exc}"]})


def _check_size(items: list) -> None:
    if not items:
        raise APIError(400, "empty_body", "The body holds no logs.")
    try:
        wire.check_count(len(items))  # MAX_BATCH, as every receiver checks it
    except wire.WireError as exc:
        raise APIError(exc.status, "batch_too_large", exc.message) from None


def _line_item(line: str, fmt: str | None, now: datetime, limits):
    errors = intake.check_line(line)
    # Parsed only: `intake.check` bounds its time, and counts it, as for JSON items.
    return intake.Invalid(errors) if errors else parse_raw(line, fmt, now, limits)


def _format_arg() -> str | None:
    return known_format(request.args.get("format"))


def _nothing_accepted(rejected: list[dict]) -> APIError:
    return APIError(422, "validation_error", "No log in the request was valid.", rejected=rejected)


def _queue_full(exc: intake.QueueFull) -> APIError:
    settings = _settings()
    return APIError(
        429,
        "queue_full",
        f"The queue holds {exc.length} logs ({exc.size} bytes) not yet stored (caps "
        f"{settings.stream_maxlen} logs, STREAM_MAXLEN, and {settings.queue_max_bytes} "
        "bytes, QUEUE_MAX_BYTES); retry after the Retry-After seconds.",
        retry_after=exc.retry_after,
    )


def _idempotency(endpoint: str, body: bytes) -> tuple[str, str] | None:
    """(Redis key, fingerprint) for the request's Idempotency-Key, or None without one."""
    value = request.headers.get(idempotency.HEADER)
    if value is None:
        return None
    problem = idempotency.check_key(value)
    if problem:
        raise APIError(400, "bad_idempotency_key", problem, fields={idempotency.HEADER: [problem]})
    print_ = idempotency.fingerprint(
        request.mimetype, request.headers.get("Content-Encoding", ""), request.query_string, body
    )
    return idempotency.redis_key(_settings(), endpoint, value), print_


def _key_reused() -> APIError:
    problem = "This key was used with a different request; use a new key for a new request."
    return APIError(422, "idempotency_key_reused", problem, fields={idempotency.HEADER: [problem]})


def _json(body: dict):
    # orjson, not `jsonify`: the hot path's answer, at a third of the cost.
    return current_app.response_class(jsoncodec.dumps(body), mimetype=JSON)


def _replayed(response):
    response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post("/data/fast")
@bp.doc(parameters=[FORMAT_PARAMETER, IDEMPOTENCY_PARAMETER], requestBody=INGEST_BODY)
@bp.response(202, Queued, description="Queued.")
@errors(bp, 400, 413, 415, 422, 429, 503)
def ingest_fast():
    """Validate cheaply, append to the stream, answer 202 with the stream ids."""
    settings = _settings()
    items, kind, body = read_items()
    _check_size(items)
    key = _idempotency("fast", body)
    once = (key[0], idempotency.TTL, key[1]) if key else None
    r = redis_client(settings.redis_url)
    try:
        if kind == "text":
            receipt = intake.submit_lines(r, settings, items, _format_arg(), once)
        else:
            receipt = intake.submit(r, settings, items, once)
    except intake.QueueFull as exc:
        raise _queue_full(exc) from None
    if receipt.seen and key and receipt.fingerprint != key[1]:
        raise _key_reused()
    if not receipt.ids:
        raise _nothing_accepted(receipt.rejected)
    response = _json(
        {"accepted": len(receipt.ids), "ids": receipt.ids, "rejected": receipt.rejected}
    )
    return (_replayed(response) if receipt.seen else response), 202


@bp.post("/data/")
@bp.doc(parameters=[FORMAT_PARAMETER, IDEMPOTENCY_PARAMETER], requestBody=INGEST_BODY)
@bp.response(201, Stored, description="Stored.")
@errors(bp, 400, 413, 415, 422, 503)
@bp.alt_response(
    409,
    schema=Error,
    description="This Idempotency-Key's first request is "
    "still being stored; retry after `Retry-After` seconds.",
)
def ingest_sync():
    """Validate, store and publish now; answer 201 with the database ids."""
    settings = _settings()
    items, kind, body = read_items()
    _check_size(items)
    key = _idempotency("sync", body)
    limits, now = Limits.of(settings), datetime.now(UTC)
    if kind == "text":
        fmt = _format_arg()
        items = [_line_item(line, fmt, now, limits) for line in items]
    good, rejected, retimed = intake.check(items, limits, now)
    r = redis_client(settings.redis_url)
    if not good:
        counters.add(r, settings, ingest_rejected=len(rejected))
        raise _nothing_accepted(rejected)
    if key:
        replay = _claim(r, key)
        if replay is not None:
            return _replayed(current_app.response_class(replay.body, replay.status, mimetype=JSON))
    try:
        body = _store(r, settings, good, rejected, len(items), now)
    except BaseException:
        if key:
            idempotency.release(r, key[0])
        raise
    pipe = r.pipeline(transaction=False)
    counters.count(
        pipe,
        settings,
        ingest_accepted=len(body["ids"]),
        ingest_rejected=len(rejected),
        ingest_timestamps_replaced=retimed,
    )
    response = _json(body)
    if key:
        idempotency.remember(pipe, *key, idempotency.Answer(201, response.get_data()))
    _execute(pipe, key)
    return response, 201


def _claim(r, key: tuple[str, str]):
    try:
        return idempotency.claim(r, *key)
    except idempotency.Mismatch:
        raise _key_reused() from None
    except idempotency.InProgress:
        raise APIError(
            409,
            "idempotency_key_in_progress",
            "A request with this Idempotency-Key is still being stored; retry shortly.",
            retry_after=1,
        ) from None


def _store(r, settings, good, rejected, count: int, now: datetime) -> dict:
    rows = [{**log, "timestamp": log["timestamp"] or now} for _, log in good]

    def publish(stored: list[dict]) -> None:
        # Committed is committed: a Redis hiccup must not turn a stored log into a 503
        # that the client would retry (and store twice). Live viewers catch up by id.
        fanout.publish_stored(r, settings, stored)

    with engine(settings.database_url).connect() as conn:
        stored = store.write_in_commit_order(conn, rows, publish)
    ids = [s["id"] for s in stored]
    body = {"stored": len(ids), "ids": ids, "rejected": rejected}
    if count == 1:
        body["id"] = ids[0]
    return body


def _execute(pipe, key) -> None:
    # Stored is stored: neither the counters nor the kept answer may turn it into an
    # error the client would retry. A key whose answer was not kept stays claimed.
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning(
            "stored, but could not count or keep the answer%s: %s", " for a key" if key else "", exc
        )
