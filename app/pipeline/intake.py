"""The one way into the queue. Every receiver (the JSON API, syslog, Heroku drains, Loki
push, `_bulk`, OTLP) decodes its wire format into items and calls `submit` or
`submit_lines`, so validation, the queue cap, receipts and counting hold for all alike.

An item is a dict in the log's input shape (`app.pipeline.record.LogSchema`), or an
`Invalid` for one the receiver could not decode: it is rejected at its index and costs
no other item its place. Nothing is enqueued when no item is valid.

Limits beyond the schema hold here for every receiver: an item nested deeper than
MAX_JSON_DEPTH is rejected at its index; a timestamp outside the window (more than
MAX_FUTURE_SECONDS ahead, or older than RETENTION_DAYS) is replaced by the received time
and kept as `metadata.original_timestamp`. The enqueue, its caps, a retry key and the
counters are one Redis round trip (`stream.enqueue`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import redis

from app.pipeline import counters, stream
from app.pipeline.record import (
    DEFAULT_LIMITS,
    MAX_MESSAGE_CHARS,
    Limits,
    depth_error,
    keep_in_window,
    load_logs,
    to_stream_json,
)
from config import Settings

QueueFull = stream.QueueFull
RedisMemoryHigh = stream.RedisMemoryHigh


@dataclass(frozen=True, slots=True)
class Invalid:
    """An item its receiver could not decode: `errors` maps a field to its problems."""

    errors: dict[str, list[str]]


@dataclass(slots=True)
class Receipt:
    """What became of each item: stream ids of the accepted (with their item indexes, in
    order) and the rejected, by index, with their field errors."""

    ids: list[str] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    seen: bool = False  # the `once` key existed: this batch was enqueued before
    fingerprint: str = ""  # when seen: the fingerprint the first request kept
    retimed: int = 0  # accepted logs whose timestamp was out of the window


def validate(
    items: list, limits: Limits = DEFAULT_LIMITS, now: datetime | None = None
) -> tuple[list[tuple[int, dict]], list[dict]]:
    """(index, validated log) for the valid items, and the rejects by index; timestamps
    outside the window around `now` are replaced in place (`record.keep_in_window`)."""
    good, rejected, _ = check(items, limits, now)
    return good, rejected


def check(
    items: list, limits: Limits = DEFAULT_LIMITS, now: datetime | None = None
) -> tuple[list[tuple[int, dict]], list[dict], int]:
    """`validate`, plus how many accepted logs had their timestamp replaced."""
    depth = limits.max_json_depth
    items = [x if isinstance(x, Invalid) else _too_deep(x, depth) or x for x in items]
    invalid = [
        {"index": i, "errors": x.errors} for i, x in enumerate(items) if isinstance(x, Invalid)
    ]
    good, rejected = load_logs([{} if isinstance(x, Invalid) else x for x in items])
    bad = {b["index"] for b in invalid}
    rejected = sorted(invalid + [x for x in rejected if x["index"] not in bad], key=_index)
    now = now or datetime.now(UTC)
    retimed = sum(keep_in_window(log, now, limits) for _, log in good)
    return good, rejected, retimed


def _too_deep(item, limit: int) -> Invalid | None:
    errors = depth_error(item, limit)
    return Invalid(errors) if errors else None


def submit(r: redis.Redis, settings: Settings, items: list, once: tuple | None = None) -> Receipt:
    """Validate `items` and enqueue the valid ones atomically (all or none: QueueFull,
    RedisMemoryHigh).

    `once` is (Redis key, TTL seconds) for a client's retry key (Heroku's frame id), or
    (key, TTL, fingerprint) for an Idempotency-Key: a batch whose key exists is not
    enqueued again, and the receipt says `seen`, with the first request's ids, rejects
    and fingerprint."""
    good, rejected, retimed = check(items, Limits.of(settings))
    values = [to_stream_json(log) for _, log in good]
    return _enqueue(r, settings, (b"d",), good, values, rejected, once, retimed)


def check_line(line: str) -> dict | None:
    """The errors of a raw line that can never be stored, or None (parsing is the drain's)."""
    if "\x00" in line:
        return {"message": ["Contains a NUL byte."]}
    if len(line) > MAX_MESSAGE_CHARS:
        return {"message": [f"Longer than {MAX_MESSAGE_CHARS} characters."]}
    return None


def submit_lines(
    r: redis.Redis,
    settings: Settings,
    lines: list[str],
    fmt: str | None,
    once: tuple[str, int] | None = None,
) -> Receipt:
    """Enqueue raw lines for the drain to parse (as `fmt`, or detected when None);
    `once` as for `submit`."""
    good, rejected = [], []
    for index, line in enumerate(lines):
        errors = check_line(line)
        if errors:
            rejected.append({"index": index, "errors": errors})
        else:
            good.append((index, line))
    values = [v for _, line in good for v in (line, fmt or "")]
    return _enqueue(r, settings, (b"r", b"f"), good, values, rejected, once)


def _enqueue(r, settings, names, good, values, rejected, once=None, retimed=0) -> Receipt:
    if not good:
        counters.add(r, settings, ingest_rejected=len(rejected))
        return Receipt(rejected=rejected)
    if once is not None and len(once) == 3:  # keep the answer with an Idempotency-Key
        once = (*once, orjson.dumps([rejected, len(good) + len(rejected)]).decode())
    amounts = {"ingest_rejected": len(rejected), "ingest_timestamps_replaced": retimed}
    try:
        ids = stream.enqueue(r, settings, names, values, once, amounts)
    except stream.AlreadySeen as exc:
        return _seen(exc.kept)
    return Receipt(ids=ids, accepted=[i for i, _ in good], rejected=rejected, retimed=retimed)


def _seen(kept: dict | None) -> Receipt:
    if kept is None or not kept.get("answer"):
        return Receipt(seen=True)
    rejected, count = orjson.loads(kept["answer"])
    refused = {x["index"] for x in rejected}
    return Receipt(
        ids=kept["ids"],
        accepted=[i for i in range(count) if i not in refused],
        rejected=rejected,
        seen=True,
        fingerprint=kept["fingerprint"],
    )


def _index(rejected: dict) -> int:
    return rejected["index"]
