"""Dead letters: list them, newest first with their reasons, and replay them.

The drain moves an entry it cannot store to DEAD_LETTER_STREAM with the entry's own
fields plus `stream_id` (its id in the queue), `reason` and `deliveries`
(`stream.acknowledge`). Once the cause is fixed (a custom pattern corrected, a limit
raised) an operator replays them: each goes back through `intake` like any log, so the
queue cap, validation and counting hold, and the drain parses it again with the parsers
it has now.

Replay is exactly once per dead letter, even when a replay is retried or two run at
once: each entry is enqueued with a once-key named after its dead-letter id (set in the
same Lua call as the append, `stream.enqueue`), and removed from the dead-letter stream
only after that. A retry finds the key, enqueues nothing and removes the entry. An entry
whose original is found stored already (dead-lettered for its deliveries after a commit
whose ack was lost) is removed without being enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import redis
from sqlalchemy import Connection, select

from app.pipeline import intake
from app.pipeline.record import logs
from config import Settings

ONCE_TTL = 7 * 24 * 3600  # seconds a replayed dead letter's once-key is kept
BODY_CHARS = 2000  # of a dead letter's body shown in a listing
META = (b"stream_id", b"reason", b"deliveries")


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode(errors="replace")


def dead_at(entry_id: str) -> str:
    """When the entry was dead-lettered (its id's time), as UTC ISO 8601."""
    ms = int(entry_id.split("-", 1)[0])
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def to_json(entry_id: str, fields: dict[bytes, bytes]) -> dict:
    """One dead letter as the API shows it: why, when, and (the start of) its body."""
    if b"r" in fields:
        kind, body = "line", _text(fields[b"r"])
    elif b"d" in fields:
        kind, body = "log", _text(fields[b"d"])
    else:
        kind, body = "empty", None
    deliveries = fields.get(b"deliveries")
    return {
        "id": entry_id,
        "stream_id": _text(fields.get(b"stream_id")),
        "reason": _text(fields.get(b"reason")) or "",
        "deliveries": int(deliveries) if deliveries and deliveries.isdigit() else None,
        "dead_at": dead_at(entry_id),
        "kind": kind,
        "format": _text(fields.get(b"f")) or None,
        "body": body[:BODY_CHARS] if body is not None else None,
        "truncated": body is not None and len(body) > BODY_CHARS,
    }


def newest(r: redis.Redis, settings: Settings, limit: int, before: str | None = None):
    """(`limit` dead letters newest first, strictly older than `before` if given; the id
    to pass as `before` for the next page, or None at the end)."""
    if before == "0-0":  # nothing is older (and Redis refuses an exclusive "(0-0")
        return [], None
    top = f"({before}" if before else "+"
    found = r.xrevrange(settings.dead_letter_stream, max=top, min="-", count=limit + 1)
    page = [to_json(i.decode(), f) for i, f in found[:limit]]
    more = len(found) > limit
    return page, (page[-1]["id"] if more else None)


def count(r: redis.Redis, settings: Settings) -> int:
    """How many dead letters there are."""
    return r.xlen(settings.dead_letter_stream)


@dataclass(slots=True)
class Replay:
    """What a replay did, per dead-letter id."""

    replayed: list[dict] = field(default_factory=list)  # {"id", "stream_id": its new id}
    already_replayed: list[str] = field(default_factory=list)  # by an earlier try
    already_stored: list[str] = field(default_factory=list)  # its original is in `logs`
    failed: list[dict] = field(default_factory=list)  # {"id", "errors"}: kept
    not_found: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        """The answer's body."""
        return {
            "replayed": self.replayed,
            "already_replayed": self.already_replayed,
            "already_stored": self.already_stored,
            "failed": self.failed,
            "not_found": self.not_found,
        }


def replay(r: redis.Redis, settings: Settings, conn: Connection, ids: list[str]) -> Replay:
    """Replay these dead letters (ids in the dead-letter stream), each exactly once.

    Raises intake.QueueFull when the queue is at its cap: those replayed before it stay
    replayed, the rest stay dead letters."""
    out = Replay()
    for entry_id in dict.fromkeys(ids):  # once each, in the order asked
        found = r.xrange(settings.dead_letter_stream, min=entry_id, max=entry_id)
        if not found:
            out.not_found.append(entry_id)
            continue
        _replay_one(r, settings, conn, entry_id, found[0][1], out)
    return out


def replay_oldest(r: redis.Redis, settings: Settings, conn: Connection, limit: int) -> Replay:
    """Replay up to `limit` dead letters, oldest first (those that fail are passed over)."""
    out, start = Replay(), "-"
    while limit > 0:
        page = r.xrange(settings.dead_letter_stream, min=start, max="+", count=min(limit, 100))
        if not page:
            break
        for raw_id, fields in page:
            _replay_one(r, settings, conn, raw_id.decode(), fields, out)
        limit -= len(page)
        start = "(" + page[-1][0].decode()
    return out


def _replay_one(r, settings, conn, entry_id: str, fields: dict, out: Replay) -> None:
    original = _text(fields.get(b"stream_id"))
    if original and _stored(conn, original):
        r.xdel(settings.dead_letter_stream, entry_id)
        out.already_stored.append(entry_id)
        return
    once = (f"{settings.dead_letter_stream}:replayed:{entry_id}", ONCE_TTL)
    if b"r" in fields:
        line = fields[b"r"].decode(errors="replace")
        fmt = _text(fields.get(b"f")) or None
        receipt = intake.submit_lines(r, settings, [line], fmt, once=once)
    elif b"d" in fields:
        try:
            item = orjson.loads(fields[b"d"])
        except orjson.JSONDecodeError as exc:
            item = intake.Invalid({"d": [f"Not JSON: {exc}"]})
        receipt = intake.submit(r, settings, [item], once=once)
    else:
        out.failed.append({"id": entry_id, "errors": {"_schema": ["The entry has no body."]}})
        return
    if receipt.rejected:
        out.failed.append({"id": entry_id, "errors": receipt.rejected[0]["errors"]})
        return
    # Enqueued now, or by an earlier try (the once-key): only then is it removed.
    r.xdel(settings.dead_letter_stream, entry_id)
    if receipt.seen:
        out.already_replayed.append(entry_id)
    else:
        out.replayed.append({"id": entry_id, "stream_id": receipt.ids[0]})


def _stored(conn: Connection, stream_id: str) -> bool:
    # The unique (stream_id, timestamp) index leads with stream_id: one probe per partition.
    statement = select(logs.c.id).where(logs.c.stream_id == stream_id).limit(1)
    return conn.execute(statement).first() is not None
