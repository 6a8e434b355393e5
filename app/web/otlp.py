"""OTLP/HTTP logs: `POST /v1/logs`, protobuf (`application/x-protobuf`) or JSON.

Answers per the OTLP spec: 200 with an ExportLogsServiceResponse whose
`partial_success` counts the records refused (the others are kept; clients do not
retry them); 400 with a google.rpc.Status when the body is not a request, or is cut
short (every complete resource before the cut is still kept); 429 + Retry-After when
the queue is full, which exporters retry: nothing of that request was enqueued.
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from app.pipeline import intake
from app.receivers import otlp
from app.web import wire
from app.web.openapi import protocol_answers

bp = Blueprint("otlp", __name__, description="OTLP/HTTP logs.")

INVALID_ARGUMENT, RESOURCE_EXHAUSTED = 3, 8


def _reply(status: int, payload: tuple[bytes, str], **headers):
    body, content_type = payload
    return body, status, {"Content-Type": content_type, **headers}


@bp.post("/v1/logs")
@protocol_answers(
    bp,
    "application/x-protobuf",
    200,
    "ExportLogsServiceResponse (partial_success when some were refused); JSON when sent JSON.",
)
def export():
    """Take an export request; answer with partial_success counts."""
    as_json = request.mimetype == "application/json"
    try:
        data = wire.body()
        items, damage = otlp.decode_json(data) if as_json else otlp.decode_protobuf(data)
        wire.check_count(len(items))
        receipt = intake.submit(wire.redis(), wire.settings(), items)
    except wire.WireError as exc:
        return _reply(exc.status, otlp.status(INVALID_ARGUMENT, exc.message, as_json))
    except otlp.RequestError as exc:
        return _reply(400, otlp.status(INVALID_ARGUMENT, str(exc), as_json))
    except intake.QueueFull as exc:
        message = f"queue full ({exc.length} logs not yet stored); retry"
        reply = otlp.status(RESOURCE_EXHAUSTED, message, as_json)
        return _reply(429, reply, **{"Retry-After": str(exc.retry_after)})
    if damage:
        message = f"request damaged: {damage}; {len(receipt.ids)} records before it were kept"
        return _reply(400, otlp.status(INVALID_ARGUMENT, message, as_json))
    message = "; ".join(f"record {r['index']}: {r['errors']}" for r in receipt.rejected[:10])
    return _reply(200, otlp.response(len(receipt.rejected), message, as_json))
