"""The one way into the queue. Every receiver (the JSON API, syslog, Heroku drains, Loki
push, `_bulk`, OTLP) decodes its wire format into items and calls `submit` or
`submit_lines`, so validation, the queue cap, receipts and counting hold for all alike.

An item is a dict in the log's input shape (`app.pipeline.record.LogSchema`), or an
`Invalid` for one the receiver could not decode: it is rejected at its index and costs
no other item its place. Nothing is enqueued when no item is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from app.pipeline import counters, stream
from app.pipeline.record import MAX_MESSAGE_CHARS, load_logs, to_stream_json
from config import Settings

QueueFull = stream.QueueFull


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


def validate(items: list) -> tuple[list[tuple[int, dict]], list[dict]]:
    """(index, validated log) for the valid items, and the rejects by index."""
    invalid = [
        {"index": i, "errors": x.errors} for i, x in enumerate(items) if isinstance(x, Invalid)
    ]
    good, rejected = load_logs([{} if isinstance(x, Invalid) else x for x in items])
    bad = {b["index"] for b in invalid}
    rejected = sorted(invalid + [x for x in rejected if x["index"] not in bad], key=_index)
    return good, rejected


def submit(
    r: redis.Redis, settings: Settings, items: list, once: tuple[str, int] | None = None
) -> Receipt:
    """Validate `items` and enqueue the valid ones atomically (all or none: QueueFull).

    `once` is (Redis key, TTL seconds) for a client's retry key (Heroku's frame id): a
    batch whose key exists is not enqueued again, and the receipt says `seen`."""
    good, rejected = validate(items)
    values = [to_stream_json(log) for _, log in good]
    return _enqueue(r, settings, (b"d",), good, values, rejected, once)


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


def _enqueue(r, settings, names, good, values, rejected, once=None) -> Receipt:
    if not good:
        counters.add(r, settings, ingest_rejected=len(rejected))
        return Receipt(rejected=rejected)
    try:
        ids = stream.enqueue(r, settings, names, values, once)
    except stream.QueueFull:
        counters.add(r, settings, ingest_refused_queue_full=1)
        raise
    except stream.AlreadySeen:
        counters.add(r, settings, ingest_retries_skipped=len(good))
        return Receipt(seen=True)
    counters.add(r, settings, ingest_accepted=len(ids), ingest_rejected=len(rejected))
    return Receipt(ids=ids, accepted=[i for i, _ in good], rejected=rejected)


def _index(rejected: dict) -> int:
    return rejected["index"]
