"""Counters every process shares, kept in one Redis hash.

Web and worker processes are many and short-lived, so in-process counters would need
prometheus-client's multiprocess mode and a shared directory. One `HINCRBY` per request
or chunk, pipelined with work already going to Redis (inside the enqueue script for an
ingest request), keeps exact totals across every process and restart instead;
`GET /metrics` exposes them.
"""

from __future__ import annotations

import logging
import time

import redis

from config import Settings

log = logging.getLogger(__name__)

COUNTERS = {
    "ingest_accepted": "Logs accepted by any receiver: JSON API, syslog, Heroku, Loki, bulk, OTLP",
    "ingest_rejected": "Logs rejected by validation at ingest (listed in the response)",
    "ingest_refused_queue_full": "Requests refused with 429 because the stream was at its cap",
    "ingest_retries_skipped": "Logs of a retried batch already enqueued (Heroku Logplex-Frame-Id)",
    "syslog_udp_dropped": "Syslog UDP datagrams dropped because the stream was at its cap",
    "drain_stored": "Logs committed to PostgreSQL by the drain",
    "drain_duplicates": "Redelivered entries the drain found already stored",
    "drain_dead_letters": "Entries moved to the dead-letter stream",
    "live_publish_failed": "Stored logs whose publish failed (read back by id; see README)",
    "live_dropped": "Logs not sent to a WebSocket client whose buffer was full",
    "retention_partitions_dropped": "Daily partitions dropped by retention (RETENTION_DAYS)",
    "ingest_timestamps_replaced": "Logs stored with their received time: theirs was past "
    "MAX_FUTURE_SECONDS ahead or older than RETENTION_DAYS (kept as metadata.original_timestamp)",
    "ingest_refused_redis_memory": "Requests refused with 503 because Redis was past "
    "REDIS_MEMORY_HIGH of its maxmemory",
    "dead_letters_dropped": "Dead letters trimmed off the dead-letter stream "
    "(DEAD_LETTER_MAXLEN or DEAD_LETTER_MAX_BYTES)",
}


def key(settings: Settings) -> str:
    """The Redis hash holding the counters."""
    return f"{settings.key_prefix}:counters"


def count(pipe: redis.client.Pipeline, settings: Settings, **amounts: int) -> None:
    """Queue HINCRBYs for the non-zero amounts on `pipe` (the caller executes it)."""
    for name, amount in amounts.items():
        if amount:
            pipe.hincrby(key(settings), name, amount)
    sample(pipe, settings, time.time(), **amounts)  # the per-10 s series below


def add(r: redis.Redis, settings: Settings, **amounts: int) -> None:
    """Add to the counters now; best effort: a counter never fails the work it counts."""
    try:
        pipe = r.pipeline(transaction=False)
        count(pipe, settings, **amounts)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not count %s: %s", amounts, exc)


def totals(r: redis.Redis, settings: Settings) -> dict[str, int]:
    """Every counter's total (zero if never incremented)."""
    stored = {k.decode(): int(v) for k, v in r.hgetall(key(settings)).items()}
    return {name: stored.get(name, 0) for name in COUNTERS}


# --- Rates over the last minutes (the system page's chart) ---------------------------
# A counter's total says nothing about when; the system page charts how many logs were
# accepted and stored per 10 s over the last minutes. Each amount `count` queues is also
# added to its 10-second bucket, one small key per bucket that expires on its own, so
# the series needs no trimming and costs two commands in a pipeline already going out.
# (Entries the drain settles as recovered are counted in its ack script, not here: they
# are redeliveries, rare, and would only be missing from the chart.)
SERIES = ("ingest_accepted", "drain_stored", "drain_dead_letters")
SERIES_STEP = 10  # seconds per bucket
SERIES_KEEP = 3600  # seconds a bucket is kept


def series_key(settings: Settings, name: str, bucket: int) -> str:
    """The Redis key of one bucket (`bucket` is its start, epoch seconds)."""
    return f"{settings.key_prefix}:series:{name}:{bucket}"


def sample(pipe: redis.client.Pipeline, settings: Settings, now: float, **amounts: int) -> None:
    """Queue the SERIES amounts into the bucket of `now` (the caller executes `pipe`)."""
    bucket = int(now) // SERIES_STEP * SERIES_STEP
    for name in SERIES:
        if amounts.get(name):
            name_key = series_key(settings, name, bucket)
            pipe.incrby(name_key, amounts[name])
            pipe.expire(name_key, SERIES_KEEP)


def series(r: redis.Redis, settings: Settings, name: str, now: float, points: int) -> list:
    """`[bucket start, amount]` for the last `points` buckets up to `now`, oldest first;
    the last bucket is still filling."""
    last = int(now) // SERIES_STEP * SERIES_STEP
    starts = [last - SERIES_STEP * i for i in range(points - 1, -1, -1)]
    values = r.mget([series_key(settings, name, s) for s in starts])
    return [[s, int(v or 0)] for s, v in zip(starts, values, strict=True)]
