"""Parallel writers: drains in four processes commit at once, and a live client that keeps
disconnecting and resuming with `after=<last id>` still sees every id exactly once.

The writers are real `drain_stream` calls in four spawned processes (own pids, own
consumer names, own connections) while a producer keeps appending to the stream; the
client runs against the real WebSocket route over a real connection.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from itertools import pairwise

import orjson
import pytest
from sqlalchemy import text

from app.pipeline import lease, store, stream
from app.pipeline.connections import engine, redis_client
from config.settings import ConfigError, load_settings
from tasks.drain import drain_leased, drain_stream
from tests.helpers import count_logs, wait_for
from tests.test_live import Client

DRAINERS = 4
BACKLOG = 3000  # waiting before the drainers start: they compete for chunks at once
ENTRIES = 6000


def _drain(settings, name: str, out) -> None:
    """Drain until the producer is done and nothing is left to read (at most 60 s)."""
    r = redis_client(settings.redis_url)
    done = f"{settings.key_prefix}:produced"

    def finished() -> bool:
        return bool(r.exists(done)) and stream.lag(r, settings) == 0

    stats = drain_stream(settings, name, budget=60.0, should_stop=finished)
    out.put((name, stats.stored))


def _produce(r, settings, start: int, end: int, pause: float) -> None:
    """Append entries start..end-1 in batches of 50, `pause` seconds apart."""
    for first in range(start, end, 50):
        pipe = r.pipeline()
        for i in range(first, min(first + 50, end)):
            pipe.xadd(settings.stream_name, {"d": orjson.dumps({"message": f"p {i}"})})
        pipe.execute()
        time.sleep(pause)


def _resuming_client(server: str, stop, connected, seen: list[int], sessions: list[int]):
    """Connect, listen for a short random while, disconnect, resume from the last id."""
    rng = random.Random(7)
    last = None
    while not stop.is_set():
        query = "" if last is None else f"?after={last}"
        client = Client(f"ws://{server}/ws/logs{query}")
        wait_for(lambda c=client: c.of_type("filters"))
        connected.set()
        time.sleep(rng.uniform(0.02, 0.2))
        client.close()
        client.thread.join(5)
        # A client too slow for the live stream is told `dropped` (README "Live view"):
        # it keeps what came before the notice and resumes from there, as the UI does.
        ids = []
        for message in client.messages:
            if message["type"] == "dropped":
                break
            if message["type"] == "logs":
                ids.extend(log["id"] for log in message["logs"])
        seen.extend(ids)
        sessions.append(len(ids))
        last = seen[-1] if seen else 0


def _published(r, settings, ready: threading.Event, batches: list[tuple[int, int]]):
    """Record (first id, last id) of every batch published on the channel."""
    pubsub = r.pubsub()
    pubsub.subscribe(settings.pubsub_channel)
    ready.set()
    for message in pubsub.listen():
        if message["type"] == "message":
            logs = orjson.loads(message["data"])["logs"]
            batches.append((logs[0]["id"], logs[-1]["id"]))


def test_four_drainers_and_a_resuming_client_see_every_id_once(live_server, r, settings, db):
    # No claims of a slow drainer's entries: a redelivery republishes old ids (by design),
    # which would blur the publish-order check below.
    settings = settings.with_overrides(claim_idle_ms=60_000)
    stream.ensure_group(r, settings)
    batches: list[tuple[int, int]] = []
    listening = threading.Event()
    threading.Thread(target=_published, args=(r, settings, listening, batches), daemon=True).start()
    assert listening.wait(5)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    drainers = [
        ctx.Process(target=_drain, args=(settings, f"drainer-{i}", out)) for i in range(DRAINERS)
    ]
    seen: list[int] = []
    sessions: list[int] = []
    stop, connected = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=_resuming_client, args=(live_server, stop, connected, seen, sessions)
    )
    watcher.start()
    assert connected.wait(10)  # subscribed before the first log: it must see them all
    _produce(r, settings, 0, BACKLOG, 0)
    for p in drainers:
        p.start()
    _produce(r, settings, BACKLOG, ENTRIES, 0.02)  # and more while they drain
    r.set(f"{settings.key_prefix}:produced", 1)
    for p in drainers:
        p.join(70)
    stored_by = dict(out.get(timeout=5) for _ in drainers)
    wait_for(lambda: count_logs(db) == ENTRIES, timeout=20)
    db.rollback()
    everything = db.execute(text("SELECT id FROM logs ORDER BY id")).scalars().all()
    wait_for(lambda: seen and seen[-1] == everything[-1], timeout=20)
    stop.set()
    watcher.join(10)

    assert sum(stored_by.values()) == ENTRIES
    assert sum(1 for n in stored_by.values() if n) >= 2, stored_by  # they did run at once
    assert len(sessions) >= 5  # the client really did disconnect and resume
    assert seen == everything  # every id, once, in order: no gap, no duplicate
    # The mechanism behind it: batches were published in id order, none overlapping.
    assert all(b[0] > a[1] for a, b in pairwise(batches)), batches
    assert stream.status(r, settings)["pending_messages"] == 0


def test_a_later_block_commits_after_and_publishes_after_an_earlier_one(settings, db):
    """The order is kept in two steps: commit after the earlier block's commit, publish
    after its publish (or after its writer gave up)."""
    eng = engine(settings.database_url)
    row = {"timestamp": "2026-01-01T00:00:00+00:00", "level": "INFO", "message": "late"}
    published = threading.Event()
    with eng.connect() as early, eng.connect() as late:
        (first,), _ = store.reserve_ids(early, 1)
        writer = threading.Thread(
            target=store.write_in_commit_order,
            args=(late, [row], lambda stored: published.set()),
        )
        writer.start()
        time.sleep(0.5)
        assert count_logs(db) == 0  # inserted, waiting for `early` to commit
        early.commit()
        wait_for(lambda: count_logs(db) == 1)  # committed in its turn
        time.sleep(0.3)
        assert not published.is_set()  # but not published before `early` is
        store.release_ids(early, first)
        writer.join(5)
        assert published.is_set()


def test_drain_writers_leases_allow_that_many_drains(r, settings, db):
    two = settings.with_overrides(drain_writers=2)
    held = [lease.acquire(r, two), lease.acquire(r, two)]
    assert None not in held
    assert lease.acquire(r, two) is None
    assert drain_leased(two) is None  # every slot taken: a no-op
    lease.release(r, two, held[0])
    stream.ensure_group(r, two)
    r.xadd(two.stream_name, {"d": orjson.dumps({"message": "one"})})
    assert drain_leased(two).stored == 1  # the freed slot
    lease.release(r, two, held[1])


@pytest.mark.parametrize(
    ("raw", "expected"), [("", 2), ("1", 1), ("3", 3), ("0", "at least 1"), ("two", "whole number")]
)
def test_drain_writers_setting(raw, expected):
    if isinstance(expected, int):
        assert load_settings({"DRAIN_WRITERS": raw}).drain_writers == expected
    else:
        with pytest.raises(ConfigError, match=f"DRAIN_WRITERS.*{expected}"):
            load_settings({"DRAIN_WRITERS": raw})
