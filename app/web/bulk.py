"""Elasticsearch's `_bulk` (`POST /_bulk`, `POST /<index>/_bulk`) and its `GET /` banner.

Each item is answered on its own, as Elasticsearch does: 201 taken, 400 refused (bad
document, delete/update, an action without its source), 429 when the queue is full.
Shippers (Filebeat, Fluent Bit, Vector, elasticsearch-py's helpers) retry only the 429
items; the queue takes a request's items all or none, so a retried item was never
enqueued before and is not stored twice.
"""

from __future__ import annotations

import time

from flask import jsonify
from flask_smorest import Blueprint

from app import __version__
from app.pipeline import intake
from app.receivers import bulk
from app.web import wire
from app.web.openapi import protocol_answers

bp = Blueprint("bulk", __name__, description="Elasticsearch _bulk.")

PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
# The version Sluice answers as: clients refuse servers older than their own major, and
# Elasticsearch 8's API is what Filebeat 8, Fluent Bit, Vector and elasticsearch-py speak.
ES_VERSION = "8.17.0"


def _error(status: int, kind: str, reason: str):
    cause = {"type": kind, "reason": reason}
    body = {"error": {"root_cause": [cause], **cause}, "status": status}
    return jsonify(body), status, PRODUCT


@bp.route("/_bulk", methods=["POST", "PUT"])
@bp.route("/<index>/_bulk", methods=["POST", "PUT"])
@protocol_answers(
    bp,
    "application/json",
    200,
    "Each item answered on its own (201, 400, 429).",
    s400="The request as a whole is refused.",
    s429=None,  # per item, inside the 200
)
def bulk_items(index: str | None = None):
    """Take NDJSON action/source pairs; answer per item."""
    started = time.monotonic()
    try:
        ops = bulk.decode(wire.body(), index)
        wire.check_count(len(ops))
    except wire.WireError as exc:
        return _error(exc.status, "parse_exception", exc.message)
    if not ops:
        return _error(400, "action_request_validation_exception", "no requests added")
    items = [op.item for op in ops]
    try:
        receipt = intake.submit(wire.redis(), wire.settings(), items)
        rejected, ids = receipt.rejected, dict(zip(receipt.accepted, receipt.ids, strict=True))
    except intake.QueueFull:
        rejected, ids = intake.validate(items)[1], None
    answers = _answers(ops, {r["index"]: r["errors"] for r in rejected}, ids)
    took = int((time.monotonic() - started) * 1000)
    errors = any(next(iter(a.values()))["status"] >= 300 for a in answers)
    return jsonify(took=took, errors=errors, items=answers), 200, PRODUCT


def _answers(ops: list, rejected: dict, ids: dict | None) -> list[dict]:
    """Per item: 400 with its errors, 429 when the queue was full (`ids` None), else 201."""
    out = []
    for i, op in enumerate(ops):
        head = {"_index": op.index, "_id": op.id}
        if i in rejected:
            out.append({op.action: {**head, "status": 400, "error": _cause(rejected[i])}})
        elif ids is None:
            reason = "the queue is full (STREAM_MAXLEN); retry this item"
            error = {"type": "es_rejected_execution_exception", "reason": reason}
            out.append({op.action: {**head, "status": 429, "error": error}})
        else:
            taken = {"_id": op.id or ids[i], "result": "created", "_version": 1, "status": 201}
            out.append({op.action: {**head, **taken}})
    return out


def _cause(errors: dict) -> dict:
    text = "; ".join(f"{field}: {', '.join(map(str, msgs))}" for field, msgs in errors.items())
    kind = "document_parsing_exception"
    for msgs in errors.values():
        first = str(msgs[0]) if msgs else ""
        if ": " in first and first.split(": ", 1)[0].endswith("exception"):
            kind = first.split(": ", 1)[0]
    return {"type": kind, "reason": text}


def banner():
    """`GET /` as Elasticsearch 8 answers it, for clients that check the server."""
    body = {
        "name": "sluice",
        "cluster_name": "sluice",
        "cluster_uuid": "sluice",
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "sluice",
            "build_hash": __version__,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }
    return jsonify(body), 200, PRODUCT
