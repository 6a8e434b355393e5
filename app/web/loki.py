"""Loki's push API: `POST /loki/api/v1/push`, and the probes clients make first.

Answers as Loki does: 204 when every entry was taken; 400 with a plain-text reason when
some were not (the others are kept, as Loki keeps them; Promtail does not retry a 400);
429 + Retry-After when the queue is full, which Promtail and Alloy retry, and since
nothing of that request was enqueued the retry duplicates nothing.
"""

from __future__ import annotations

from flask import jsonify, request
from flask_smorest import Blueprint

from app import __version__
from app.pipeline import intake
from app.receivers import loki
from app.web import wire
from app.web.openapi import protocol_answers

# The probes take no body: none of a push's refusals apply.
NOT_A_PUSH = {"s400": None, "s413": None, "s415": None, "s429": None}
bp = Blueprint("loki", __name__, description="Loki push (Promtail, Alloy).")


def _text(status: int, message: str, **headers):
    return message + "\n", status, {"Content-Type": "text/plain; charset=utf-8", **headers}


@bp.post("/loki/api/v1/push")
@protocol_answers(
    bp,
    "text/plain",
    204,
    "Taken.",
)
def push():
    """Take a JSON or protobuf (snappy) push; 204, or Loki's 400/429 text answers."""
    protobuf = request.mimetype != "application/json"
    try:
        data = wire.body("snappy" if protobuf else None)
        items = loki.decode_protobuf(data) if protobuf else loki.decode_json(data)
        wire.check_count(len(items))
        receipt = intake.submit(wire.redis(), wire.settings(), items)
    except wire.WireError as exc:
        return _text(exc.status, exc.message)
    except loki.PushError as exc:
        return _text(400, str(exc))
    except intake.QueueFull as exc:
        message = f"ingestion rate limit exceeded: {exc.length} logs queued"
        return _text(429, message, **{"Retry-After": str(exc.retry_after)})
    if receipt.rejected:
        return _text(400, _rejected_text(receipt.rejected, len(items)))
    return "", 204


def _rejected_text(rejected: list[dict], total: int) -> str:
    shown = "; ".join(f"entry {r['index']}: {r['errors']}" for r in rejected[:10])
    return f"{len(rejected)} of {total} entries rejected, the others were accepted: {shown}"


@bp.get("/loki/api/v1/status/buildinfo")
@protocol_answers(bp, "application/json", 200, "As Loki answers it.", **NOT_A_PUSH)
def buildinfo():
    """What Loki's buildinfo says; Grafana and some clients probe it."""
    return jsonify(
        version="3.0.0",
        revision=f"sluice-{__version__}",
        branch="",
        buildUser="sluice",
        buildDate="",
        goVersion="",
    )


@bp.get("/ready")
@protocol_answers(bp, "text/plain", 200, "ready", **NOT_A_PUSH)
def ready():
    """Loki's readiness probe."""
    return _text(200, "ready")
