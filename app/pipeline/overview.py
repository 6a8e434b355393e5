"""What the system page shows, gathered from Redis and PostgreSQL (no Flask, no Celery):
the queue and its lag, rates over the last minutes, the stream's consumers (one per
worker process that ever drained), the newest dead letters and the size of each
partition. The web face adds the Celery workers (`app/web/system.py`)."""

from __future__ import annotations

import time

import redis
from sqlalchemy import Connection, text

from app.pipeline import counters, deadletters, stream
from config import Settings

RATE_POINTS = 60  # 10 minutes of 10-second buckets
NEWEST_DEAD = 10

_PARTITION_SIZES = text(
    "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes, "
    "CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END AS rows_estimate "
    "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'logs'::regclass ORDER BY c.relname DESC"
)


def queue(r: redis.Redis, settings: Settings, now: float) -> dict:
    """Length, lag (entries not yet delivered), pending, the lag's age, the cap."""
    status = stream.status(r, settings)
    return {
        "length": status["length"],
        "lag": status["lag"] or 0,
        "pending": status["pending_messages"],
        "lag_age_seconds": round(stream.oldest_undrained_age(r, settings, now), 3),
        "max_length": status["max_length"],
    }


def rates(r: redis.Redis, settings: Settings, now: float, points: int = RATE_POINTS) -> dict:
    """Per 10-second bucket, logs accepted, stored and dead-lettered (oldest first)."""
    out = {"step_seconds": counters.SERIES_STEP}
    for name in counters.SERIES:
        out[name] = counters.series(r, settings, name, now, points)
    stored = [t for t, n in out["drain_stored"] if n]
    out["last_stored_at"] = stored[-1] if stored else None
    return out


def consumers(r: redis.Redis, settings: Settings) -> list[dict]:
    """The stream's consumers (`<host>-<pid>`, one per worker process that read it): what
    each holds, and how long since it last read (`inactive_ms` since it last got
    entries, on Redis 7.2 and later)."""
    try:
        found = r.xinfo_consumers(settings.stream_name, settings.consumer_group)
    except redis.ResponseError:  # no stream or group yet
        return []
    return [
        {
            "name": c["name"].decode(),
            "pending": c["pending"],
            "idle_ms": c["idle"],
            "inactive_ms": c.get("inactive") if c.get("inactive", -1) >= 0 else None,
        }
        for c in found
    ]


def partitions(conn: Connection) -> list[dict]:
    """Each partition of `logs`, newest first, with its size (table, indexes, TOAST) and
    the planner's row estimate (None until it was first analyzed)."""
    return [dict(row) for row in conn.execute(_PARTITION_SIZES).mappings()]


def gather(r: redis.Redis, settings: Settings, conn: Connection) -> dict:
    """Everything above, in one answer."""
    now = time.time()
    newest, _ = deadletters.newest(r, settings, NEWEST_DEAD)
    parts = partitions(conn)
    return {
        "time": now,
        "queue": queue(r, settings, now),
        "rates": rates(r, settings, now),
        "consumers": consumers(r, settings),
        "dead_letters": {"total": deadletters.count(r, settings), "newest": newest},
        "partitions": parts,
        "database_bytes": sum(p["bytes"] for p in parts),
    }
