"""Heroku log drains: `POST /heroku/logs` (`heroku drains:add https://HOST/heroku/logs?app=NAME`).

A retried POST carries the same `Logplex-Frame-Id`; the id is set in Redis atomically
with the enqueue (`intake.submit(once=...)`), so a frame is enqueued at most once per
`FRAME_ID_TTL` however often logplex retries it. 204 on success (and on a retry already
taken); 400 naming the frames that were refused, the others kept; 429 + Retry-After
when the queue is full (nothing enqueued, the id not set, so the retry is taken).
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from app.pipeline import intake
from app.receivers import logplex
from app.web import wire
from app.web.openapi import protocol_answers

bp = Blueprint("heroku", __name__, description="Heroku log drains (logplex).")


def _text(status: int, message: str, **headers):
    return message + "\n", status, {"Content-Type": "text/plain; charset=utf-8", **headers}


def _drain() -> logplex.Drain:
    count = request.headers.get("Logplex-Msg-Count", "")
    return logplex.Drain(
        token=request.headers.get("Logplex-Drain-Token"),
        frame_id=request.headers.get("Logplex-Frame-Id"),
        msg_count=int(count) if count.isdigit() else None,
        app=request.args.get("app"),
    )


@bp.post("/heroku/logs")
@protocol_answers(
    bp,
    "text/plain",
    204,
    "Taken (a retried Frame-Id is taken once).",
)
def drain():
    """Take one logplex frame of octet-counted syslog messages."""
    if request.mimetype != "application/logplex-1":
        return _text(415, "send Content-Type: application/logplex-1")
    settings, info = wire.settings(), _drain()
    try:
        items = logplex.decode(wire.body(), info)
        wire.check_count(len(items))
        key = logplex.once_key(settings.key_prefix, info)
        once = (key, logplex.FRAME_ID_TTL) if key else None
        receipt = intake.submit(wire.redis(), settings, items, once=once)
    except wire.WireError as exc:
        return _text(exc.status, exc.message)
    except intake.QueueFull as exc:
        wait = {"Retry-After": str(exc.retry_after)}  # from the drain's measured rate
        return _text(429, f"queue full ({exc.length} logs not yet stored)", **wait)
    problems = [f"frame {r['index']}: {r['errors']}" for r in receipt.rejected[:10]]
    mismatch = logplex.count_problem(items, info)
    if mismatch:
        problems.insert(0, mismatch)
    if problems:
        return _text(400, "; ".join(problems) + " (the other frames were accepted)")
    return "", 204
