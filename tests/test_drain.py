"""The drain against real Redis and PostgreSQL: chunks, idempotency, dead letters, claims."""

from __future__ import annotations

import time

import orjson
import pytest
import redis
from sqlalchemy import select, text

from app.pipeline import counters, jsoncodec, lease, stream
from app.pipeline.connections import redis_client
from app.pipeline.record import logs, to_json
from tasks.drain import consumer_name, drain_leased, drain_stream, entry_time, split_chunk
from tests.helpers import count_logs


def add(r, settings, n, **fields):
    """XADD n structured entries directly (as any producer could)."""
    pipe = r.pipeline()
    for i in range(n):
        body = {"message": f"log {i}", "source": "test", **fields}
        pipe.xadd(settings.stream_name, {"d": orjson.dumps(body)})
    return [i.decode() for i in pipe.execute()]


def test_drains_everything_and_acks(r, settings, db):
    stream.ensure_group(r, settings)
    add(r, settings, 250)
    # Until nothing is left to read, not for a fixed time: on a slow machine the first
    # chunk of a process (its engine, its first connection) can outlast a short budget.
    stats = drain_stream(
        settings, "c1", budget=30, should_stop=lambda: stream.lag(r, settings) == 0
    )
    assert stats.stored == 250
    assert stats.chunks == 3  # BATCH_SIZE 100
    assert count_logs(db) == 250
    status = stream.status(r, settings)
    assert status["pending_messages"] == 0
    assert status["lag"] == 0
    assert status["length"] <= 1  # acked entries are trimmed (the last delivered may stay)


class AcksBeforeXpending(redis.Redis):
    """A client whose XPENDING comes just after another consumer acked every pending
    entry: the interleaving four drainers hit in CI (group info said pending, XPENDING
    then found none)."""

    other: redis.Redis  # the consumer that acks

    def xpending(self, name, groupname):
        pending = super().xpending_range(name, groupname, "-", "+", 10_000)
        self.other.xack(name, groupname, *[p["message_id"] for p in pending])
        return super().xpending(name, groupname)


def test_trim_after_another_consumer_acked_the_pending_entries(r, settings):
    stream.ensure_group(r, settings)
    add(r, settings, 5)
    assert len(stream.read_new(r, settings, "c1", 10)) == 5  # delivered, pending
    racing = AcksBeforeXpending.from_url(settings.redis_url)
    racing.other = r
    assert stream.trim_acked(racing, settings) == 4  # all but the last delivered
    assert r.xpending(settings.stream_name, settings.consumer_group)["pending"] == 0


def test_missing_timestamp_is_the_entry_time(r, settings, db):
    stream.ensure_group(r, settings)
    (sid,) = add(r, settings, 1)
    drain_stream(settings, "c1", budget=0.2)
    stored = db.execute(text("SELECT timestamp FROM logs WHERE stream_id = :s"), {"s": sid})
    assert stored.scalar_one() == entry_time(sid)


def test_redelivered_chunk_is_not_stored_twice(r, settings, db):
    """A worker that stored a chunk and died before XACK: the chunk comes back."""
    stream.ensure_group(r, settings)
    add(r, settings, 100)
    entries = stream.read_chunk(r, settings, "dies", block_ms=100)
    rows, _ = split_chunk(entries, settings.max_retries)
    from app.pipeline import store
    from app.pipeline.connections import engine

    with engine(settings.database_url).connect() as conn:
        store.write_in_commit_order(conn, rows, lambda stored: None)  # no ack: "killed"
    assert count_logs(db) == 100
    claimer = settings.with_overrides(claim_idle_ms=100)

    time.sleep(0.2)
    pubsub = r.pubsub()
    pubsub.subscribe(settings.pubsub_channel)
    stats = drain_stream(claimer, "survivor", budget=0.3)
    # Stored by the run that died, counted (and published) by the one that acks them.
    assert stats.stored == 100
    assert stats.duplicates == 0
    assert counters.totals(r, settings)["drain_stored"] == 100
    assert count_logs(db) == 100
    published = []
    while (message := pubsub.get_message(timeout=1.0)) is not None:
        if message["type"] == "message":
            published += [entry["stream_id"] for entry in orjson.loads(message["data"])["logs"]]
    pubsub.close()
    assert sorted(published) == sorted(e.id for e in entries)
    assert stream.status(r, settings)["pending_messages"] == 0


@pytest.mark.parametrize(
    ("poison", "reason"),
    [
        ({"d": orjson.dumps({"message": "nul \x00 byte"})}, "NUL"),
        ({"d": orjson.dumps({"message": "big", "source": "s" * 10_000})}, "source"),
        ({"d": b"{not json"}, "bad JSON"),
        ({"x": b"no body"}, "no body"),
        ({"r": b"raw \x00 line", "f": b""}, "NUL"),
    ],
)
def test_poisoned_entry_goes_to_dead_letters_alone(r, settings, db, poison, reason):
    stream.ensure_group(r, settings)
    first = add(r, settings, 50)
    bad = r.xadd(settings.stream_name, poison).decode()
    rest = add(r, settings, 49)
    stats = drain_stream(settings, "c1", budget=0.3)
    assert stats.stored == 99
    assert count_logs(db) == 99
    assert count_logs(db, "stream_id = :s", s=bad) == 0
    assert count_logs(db, "stream_id = ANY(:ids)", ids=first + rest) == 99
    ((_, fields),) = r.xrange(settings.dead_letter_stream)
    assert fields[b"stream_id"].decode() == bad
    assert reason in fields[b"reason"].decode()
    status = stream.status(r, settings)
    assert status["dead_letters"] == 1
    assert status["pending_messages"] == 0


def test_entry_delivered_too_often_is_dead_lettered(r, settings, db):
    stream.ensure_group(r, settings)
    add(r, settings, 1)
    # A worker that died on it every time: first delivery plus MAX_RETRIES redeliveries.
    r.xreadgroup(settings.consumer_group, "crashy", {settings.stream_name: ">"}, count=10)
    for _ in range(settings.max_retries):
        r.xreadgroup(settings.consumer_group, "crashy", {settings.stream_name: "0"}, count=10)
    stats = drain_stream(settings, "crashy", budget=0.2)
    assert stats.stored == 0
    assert stats.dead == 1
    ((_, fields),) = r.xrange(settings.dead_letter_stream)
    assert b"delivered" in fields[b"reason"]


def test_database_down_leaves_entries_undelivered(r, settings):
    stream.ensure_group(r, settings)
    add(r, settings, 10)
    down = settings.with_overrides(database_url="postgresql+psycopg2://postgres@127.0.0.1:1/x")
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError):
        drain_stream(down, "c1", budget=0.2)
    status = stream.status(r, settings)
    assert status["lag"] == 10  # nothing was read, so no delivery was counted
    assert status["pending_messages"] == 0


def test_raw_lines_are_parsed_in_the_drain(client, r, settings, db):
    lines = (
        '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 503 2326\n'
        "just some words\n"
    )
    assert client.post("/data/fast", data=lines, content_type="text/plain").status_code == 202
    drain_stream(settings, "c1", budget=0.3)
    db.rollback()
    rows = db.execute(text("SELECT level, metadata->>'format' FROM logs ORDER BY id")).all()
    assert [tuple(x) for x in rows] == [("ERROR", "apache"), ("INFO", "raw")]


def test_stored_logs_are_published_with_ids(r, settings):
    stream.ensure_group(r, settings)
    pubsub = redis_client(settings.redis_url).pubsub()
    pubsub.subscribe(settings.pubsub_channel)
    pubsub.get_message(timeout=1)
    ids = add(r, settings, 3)
    drain_stream(settings, "c1", budget=0.2)
    message = pubsub.get_message(timeout=2)
    logs = orjson.loads(message["data"])["logs"]
    assert [x["stream_id"] for x in logs] == ids
    assert all(isinstance(x["id"], int) for x in logs)
    pubsub.close()


def test_published_logs_are_what_a_read_of_the_table_returns(r, settings, db):
    """The drain publishes what it sent with what the server decided or rewrote (id,
    timestamp, metadata, created_at), not every column read back: each published log
    equals the stored row."""
    stream.ensure_group(r, settings)
    pubsub = redis_client(settings.redis_url).pubsub()
    pubsub.subscribe(settings.pubsub_channel)
    pubsub.get_message(timeout=1)
    bodies = [
        {"message": "plain"},
        {"message": "offset", "timestamp": "2026-01-02T03:04:05.123456+05:30", "level": "warn"},
        {"message": "ünïcødé ✓", "source": "s", "application": "a", "metadata": {"k": "ü"}},
        {"message": "numbers", "metadata": {"f": 0.1, "big": 1e20, "neg": -7, "t": True}},
        {"message": "nested", "metadata": {"z": {"b": [1, {"c": None}]}, "a": ""}},
    ]
    for body in bodies:
        r.xadd(settings.stream_name, {"d": orjson.dumps(body)})
    done = drain_stream(settings, "c1", budget=30, should_stop=lambda: stream.lag(r, settings) == 0)
    assert done.stored == len(bodies)
    published = orjson.loads(pubsub.get_message(timeout=2)["data"])["logs"]
    pubsub.close()
    db.rollback()
    read = db.execute(select(logs).order_by(logs.c.id)).mappings().all()
    assert published == [orjson.loads(jsoncodec.dumps(to_json(row))) for row in read]


def test_consumer_name_is_per_process():
    import os

    assert consumer_name().endswith(f"-{os.getpid()}")


def test_row_the_database_refuses_is_dead_lettered_alone(r, settings, db):
    """An operator's CHECK constraint refuses one row: the other 99 are stored."""
    db.execute(text("ALTER TABLE logs ADD CONSTRAINT no_secrets CHECK (message <> 'secret')"))
    db.commit()
    try:
        stream.ensure_group(r, settings)
        add(r, settings, 50)
        bad = r.xadd(settings.stream_name, {"d": orjson.dumps({"message": "secret"})}).decode()
        add(r, settings, 49)
        stats = drain_stream(settings, "c1", budget=0.3)
    finally:
        db.rollback()
        db.execute(text("ALTER TABLE logs DROP CONSTRAINT no_secrets"))
        db.commit()
    assert (stats.stored, stats.dead) == (99, 1)
    ((_, fields),) = r.xrange(settings.dead_letter_stream)
    assert fields[b"stream_id"].decode() == bad
    assert b"no_secrets" in fields[b"reason"]
    assert stream.status(r, settings)["pending_messages"] == 0


def test_offsets_are_stored_as_utc_even_extreme_ones(r, settings, db):
    stream.ensure_group(r, settings)
    ts = "2024-01-01T00:00:00+23:00"  # Python accepts it; PostgreSQL would not
    r.xadd(settings.stream_name, {"d": orjson.dumps({"message": "far east", "timestamp": ts})})
    assert drain_stream(settings, "c1", budget=0.2).stored == 1
    db.rollback()
    stored = db.execute(text("SELECT timestamp FROM logs")).scalar_one()
    assert stored.isoformat() == "2023-12-31T01:00:00+00:00"


def test_a_drain_while_others_hold_every_lease_is_a_no_op(r, settings, db):
    stream.ensure_group(r, settings)
    add(r, settings, 10)
    tokens = [lease.acquire(r, settings) for _ in range(settings.drain_writers)]
    assert None not in tokens
    assert drain_leased(settings) is None
    assert count_logs(db) == 0  # entries wait for the holders
    lease.release(r, settings, tokens.pop())
    assert drain_leased(settings).stored == 10
    assert lease.acquire(r, settings) is not None  # released after the drain
