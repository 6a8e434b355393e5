"""The drain: stream entries -> parsed, validated rows -> PostgreSQL -> ack -> publish.

One chunk (BATCH_SIZE entries) is one transaction. Per chunk:
1. check out a database connection (pre-ping: if PostgreSQL is down we stop here, before
   reading, so an outage does not count as a delivery against any entry);
2. read: own unacked entries first, then entries idle on other consumers, then new ones;
3. turn each entry into a row; one that cannot be (bad JSON, NUL byte, over-long field,
   delivered more than MAX_RETRIES times) becomes a dead letter with its reason;
4. insert with ON CONFLICT DO NOTHING (in parallel with other drains), then commit and
   publish in id order with them (`store.write_in_commit_order`);
5. dead-letter the rejects, XACK everything and count it in one MULTI.
About once a second (COUNT_EVERY) a drain also adds what was stored to /logs/stats'
per-minute counts (`rollup.catch_up`, in a transaction of its own).
A crash (or a failed publish) anywhere before 5 leaves the entries pending: they are read
again and, being keyed on their stream id, stored at most once. A redelivered entry found
already stored is published again (live clients skip ids they have) and counted as
stored once its ack goes through, since no ack counted it before.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import redis
from celery import shared_task
from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError

from app.pipeline import fanout, lease, rollup, store, stream
from app.pipeline.connections import engine, redis_client
from app.pipeline.record import (
    DEFAULT_LIMITS,
    Limits,
    canonical_log,
    log_schema,
    quick_log,
    raw_to_data,
)
from app.pipeline.stream import Entry
from config import Settings
from tasks.celery_app import stopping

log = logging.getLogger(__name__)

# Seconds between a drain's rollup catch-ups: stats read the logs not yet counted from
# `logs` itself, so this bounds that work (about a second of logs), not their accuracy.
COUNT_EVERY = 1.0


class Rejected(Exception):
    """An entry that can never be stored; the message is the dead-letter reason."""


@dataclass
class DrainStats:
    """What one drain run did."""

    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    chunks: int = 0
    lag: int = 0
    reasons: list[str] = field(default_factory=list)


def consumer_name() -> str:
    """A consumer name unique to this worker process."""
    return f"{socket.gethostname()}-{os.getpid()}"


def entry_time(stream_id: str) -> datetime:
    """The moment Redis accepted an entry, from its id: the default timestamp of a log."""
    return datetime.fromtimestamp(int(stream_id.split("-", 1)[0]) / 1000, tz=UTC)


def entry_to_row(entry: Entry, limits: Limits = DEFAULT_LIMITS) -> dict:
    """Decode, parse and validate one entry into a `logs` row, or raise Rejected."""
    row = _decode(entry, limits)
    if row["timestamp"] is None:
        row["timestamp"] = entry_time(entry.id)
    row["stream_id"] = entry.id
    return row


def _decode(entry: Entry, limits: Limits) -> dict:
    fields = entry.fields
    if b"d" in fields:
        try:
            data = orjson.loads(fields[b"d"])
        except orjson.JSONDecodeError as exc:
            raise Rejected(f"bad JSON: {exc}") from None
        # Sluice's own ingest writes canonical entries: a cheap check suffices for them.
        canonical = canonical_log(data, fields[b"d"])
        if canonical is not None:
            return canonical
    elif b"r" in fields:
        try:
            line = fields[b"r"].decode()
        except UnicodeDecodeError:
            raise Rejected("raw line is not UTF-8") from None
        received = entry_time(entry.id)
        data = raw_to_data(line, fields.get(b"f", b"").decode() or None, received, limits)
        # What the parsers give is mostly in Sluice's own shape already, and a schema
        # load costs several times the parse (a syslog line: ~64 us against ~10 us).
        quick = quick_log(data)
        if quick is not None:
            return quick
    else:
        raise Rejected("entry has no body (no 'd' or 'r' field)")
    try:
        return log_schema.load(data)
    except ValidationError as exc:
        raise Rejected(f"invalid: {orjson.dumps(exc.messages).decode()}") from None


def split_chunk(
    entries: list[Entry], max_retries: int, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[dict], list[tuple[Entry, str]]]:
    """Rows for the storable entries, and (entry, reason) for the rest."""
    rows, dead = [], []
    for entry in entries:
        if entry.deliveries > max_retries:
            dead.append((entry, f"delivered {entry.deliveries} times without being stored"))
            continue
        try:
            rows.append(entry_to_row(entry, limits))
        except Rejected as exc:
            dead.append((entry, str(exc)))
    return rows, dead


def waits(stored: list[dict], committed_at: float) -> list[float]:
    """Per stored row, seconds from its acceptance (its stream id) to its commit."""
    return [committed_at - int(row["stream_id"].split("-", 1)[0]) / 1000 for row in stored]


class PublishFailed(Exception):
    """Rows were committed but not published; their entries stay pending, so the next
    delivery finds them stored and publishes them then."""


def store_chunk(
    conn: Connection, r: redis.Redis, settings: Settings, entries: list[Entry], stats: DrainStats
) -> None:
    """Store one chunk, publish what was stored, then dead-letter and ack."""
    started = time.monotonic()
    rows, dead = split_chunk(entries, settings.max_retries, Limits.of(settings))
    redelivered = {e.id for e in entries if e.deliveries > 1}
    refused: list[tuple[int, str]] = []
    recovered: list[dict] = []
    published = []
    committed_at = []

    def insert(c, rs, isolate=False):
        if isolate:  # find the row the database refuses, alone: it costs no other its place
            ok, bad = store.insert_each(c, rs)
            refused.extend(bad)
        else:
            ok = store.insert_logs(c, rs)
        new = {row["stream_id"] for row in ok}
        again = [row for row in rs if row["stream_id"] in redelivered - new]
        recovered[:] = store.already_stored(c, again) if again else []
        return ok

    def publish(stored):  # runs right after the commit
        committed_at.append(time.time())
        published.append(fanout.publish_stored(r, settings, stored + recovered))

    try:
        stored = store.write_in_commit_order(conn, rows, publish, insert=insert)
    except (DataError, IntegrityError, ValueError):
        stored = store.write_in_commit_order(
            conn, rows, publish, insert=lambda c, rs: insert(c, rs, isolate=True)
        )
        by_id = {e.id: e for e in entries}
        dead += [(by_id[rows[i]["stream_id"]], reason) for i, reason in refused]
    if not all(published):
        raise PublishFailed(f"{len(stored) + len(recovered)} stored logs not published")
    recovered_ids = [row["stream_id"] for row in recovered]
    skip = {e.id for e, _ in dead} | set(recovered_ids)
    duplicates = len(rows) - len(stored) - len(refused) - len(recovered)
    acked_recovered = stream.acknowledge(
        r,
        settings,
        [e.id for e in entries if e.id not in skip],
        dead,
        recovered=recovered_ids,
        drain_stored=len(stored),
        drain_duplicates=duplicates,
        drain_dead_letters=len(dead),
        timings={
            "accept_to_commit_seconds": waits(stored, committed_at[-1]),
            "drain_chunk_seconds": [time.monotonic() - started],
        },
    )
    for entry, reason in dead:
        log.warning("dead-lettered %s: %s", entry.id, reason)
    stats.chunks += 1
    stats.stored += len(stored) + acked_recovered
    stats.duplicates += duplicates + len(recovered) - acked_recovered
    stats.dead += len(dead)


def drain_stream(
    settings: Settings, consumer: str, budget: float, should_stop=lambda: False
) -> DrainStats:
    """Drain chunks for up to `budget` seconds, or until `should_stop()`; a chunk once
    read is always finished."""
    r = redis_client(settings.redis_url)
    eng = engine(settings.database_url)
    stream.ensure_group(r, settings)
    stats = DrainStats()
    deadline = time.monotonic() + budget
    recovering = True  # recovery reads (own pending, idle claims) until they run dry
    count_at = time.monotonic()  # at once: what the drain before this one stored last
    while (remaining := deadline - time.monotonic()) > 0 and not should_stop():
        with eng.connect() as conn:
            entries = stream.read_recovered(r, settings, consumer) if recovering else []
            if not entries:
                recovering = False
                block_ms = max(int(min(remaining, COUNT_EVERY) * 1000), 1)
                entries = stream.read_new(r, settings, consumer, block_ms)
            if entries:
                store_chunk(conn, r, settings, entries, stats)
            if time.monotonic() >= count_at:
                rollup.catch_up(conn)
                conn.commit()
                count_at = time.monotonic() + COUNT_EVERY
    if stats.chunks:
        stream.trim_acked(r, settings)
        stats.lag = stream.lag(r, settings)
    return stats


def drain_leased(settings: Settings, should_stop=lambda: False) -> DrainStats | None:
    """Drain for DRAIN_BUDGET under a drain lease; None if DRAIN_WRITERS drains hold them all."""
    r = redis_client(settings.redis_url)
    token = lease.acquire(r, settings)
    if token is None:
        return None
    try:
        return drain_stream(settings, consumer_name(), settings.drain_budget, should_stop)
    finally:
        try:
            lease.release(r, settings, token)
        except redis.RedisError as exc:  # the lease lapses on its own after its TTL
            log.warning("could not release the drain lease: %s", exc)


@shared_task(bind=True, name="sluice.drain", ignore_result=True)
def drain(self) -> dict:
    """Drain for DRAIN_BUDGET, then hand over to a successor; a no-op while every drain
    lease is held (beat schedules one every DRAIN_INTERVAL to restart a lost chain)."""
    settings: Settings = current_app.extensions["sluice"]
    try:
        stats = drain_leased(settings, stopping)
    except (OperationalError, InterfaceError, redis.RedisError, PublishFailed) as exc:
        # The database or Redis is away: entries stay pending; try again with backoff.
        countdown = min(2**self.request.retries, 30)
        log.warning("drain failed (%s); retry %s in %ss", exc, self.request.retries + 1, countdown)
        raise self.retry(exc=exc, countdown=countdown, max_retries=settings.max_retries) from None
    if stats is None:
        return {"skipped": "every drain lease is held"}
    if not stopping():
        # Hand over at once: some drain is always blocked on the stream, so a log is read
        # the moment it arrives; beat's drains only restart the chain if it was lost.
        self.apply_async(expires=settings.drain_budget + 2 * settings.drain_interval)
    if stats.chunks:  # an idle drain logs nothing: one line per busy drain
        log.info(
            "drained %s chunks: %s stored, %s duplicates, %s dead letters; lag %s",
            stats.chunks,
            stats.stored,
            stats.duplicates,
            stats.dead,
            stats.lag,
        )
    return {"stored": stats.stored, "duplicates": stats.duplicates, "dead": stats.dead}
