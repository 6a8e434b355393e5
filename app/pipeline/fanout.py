"""Fan-out of stored logs: every write path publishes after commit, each web process
subscribes once.

Pub/Sub is not durable and is not treated as such: a message is `{"logs": [...]}` for
logs already committed to PostgreSQL (in their `record.to_json` form), so anything
missed here (a slow client, a Redis reconnect) can be read back from the database by
id. One `Hub` per web process holds one Redis subscription and its subscribers grouped
by filter (kept as they register or change filters, not worked out per message): each
batch is filtered and encoded once per distinct filter, and the one encoded frame is
offered to every subscriber of that filter. A subscriber decides what offering costs:
the web face writes the frame at once when its client is keeping up and buffers it
(bounded, dropping for that client only) when not.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis
from sqlalchemy.exc import SQLAlchemyError

from app.pipeline import counters, histograms, jsoncodec
from app.pipeline.connections import engine, redis_client
from app.pipeline.filters import Filters, search_messages
from app.pipeline.record import to_json
from config import Settings

log = logging.getLogger(__name__)

# Put in a client's buffer when the hub lost its subscription for a while: the client
# must catch up from the database, since messages published meanwhile are gone.
RESYNC = object()
# Publishing runs in the writer's turn to publish (`store.write_in_commit_order`): retry
# briefly there, so a Redis blip does not let a later commit be published before this
# one (a gap for live clients).
PUBLISH_ATTEMPTS = (0.05, 0.2, 0.5)
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 10.0


def publish(r: redis.Redis, channel: str, logs: list[dict]) -> int:
    """Publish stored logs (already JSON-safe dicts); return the number of receivers."""
    if not logs:
        return 0
    # The publish time travels with the message, for the live fan-out delay histogram.
    return r.publish(channel, jsoncodec.dumps({"logs": logs, "published": time.time()}))


def publish_stored(r: redis.Redis, settings: Settings, rows: list[dict]) -> bool:
    """Publish committed rows once, in id order, after their commit. Never raises: a
    Redis error is retried briefly, then logged, counted and answered with False, so
    the caller (who holds the rows' stream entries) can have them published later."""
    if not rows:
        return True
    logs = [to_json(row) for row in sorted(rows, key=lambda row: row["id"])]
    for pause in (*PUBLISH_ATTEMPTS, None):
        try:
            publish(r, settings.pubsub_channel, logs)
            return True
        except redis.RedisError as exc:
            if pause is None:
                log.warning("stored %s logs but could not publish them: %s", len(logs), exc)
                counters.add(r, settings, live_publish_failed=len(logs))
                return False
            time.sleep(pause)
    return False  # unreachable: the loop returns


@dataclass(slots=True)
class Batch:
    """Logs for one filter, with their frame encoded once for every client of it."""

    logs: list[dict]
    frame: bytes  # what `Hub.encode` made of the `{"type": "logs", ...}` message
    published: float | None = None  # when the drain published it (epoch seconds)

    @property
    def first_id(self) -> int:
        return self.logs[0]["id"]

    @property
    def last_id(self) -> int:
        return self.logs[-1]["id"]


class Subscriber:
    """What the hub fans out to: a filter (changed through `Hub.refilter`, which regroups
    the subscriber) and `offer`, called from the hub's thread for every batch that passes
    it (or RESYNC). `offer` must never block or raise: one slow client may lose its own
    frames, never delay the others. It answers True when the frame went out at once."""

    def __init__(self, filters: Filters) -> None:
        self.filter = filters

    def offer(self, item) -> bool:
        """Take a Batch (or RESYNC) for this subscriber's client."""
        raise NotImplementedError


class Hub:
    """One Redis subscription per process, fanned out to `Subscriber`s. Its thread
    survives anything: a bad message is logged and skipped, a lost subscription is
    retried with a backoff that resets once it is back, and clients are then resynced."""

    def __init__(self, settings: Settings, encode=bytes) -> None:
        self.settings = settings
        # The frame as it goes on the wire, made once per batch and filter (the web face
        # passes its WebSocket framing; the default keeps the JSON bytes).
        self.encode = encode
        self._groups: dict[Filters, set[Subscriber]] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def count(self) -> int:
        with self._lock:
            return sum(len(subs) for subs in self._groups.values())

    @property
    def ready(self) -> bool:
        """Is the subscription live (published logs reach the clients)?"""
        return self._ready.is_set()

    def add(self, subscriber: Subscriber, timeout: float = 5.0) -> None:
        """Register a subscriber; returns once the Redis subscription is live. The caller
        removes it (in a `finally`) whether or not this raised."""
        with self._lock:
            self._groups.setdefault(subscriber.filter, set()).add(subscriber)
            if self._thread is None or not self._thread.is_alive():
                self._ready.clear()
                self._thread = threading.Thread(target=self._run, name="sluice-hub", daemon=True)
                self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("live subscription to Redis is not ready")

    def remove(self, subscriber: Subscriber) -> None:
        """Forget a subscriber (its connection closed)."""
        with self._lock:
            self._ungroup(subscriber)

    def refilter(self, subscriber: Subscriber, filters: Filters) -> None:
        """Give a registered subscriber new filters (it moves to their group)."""
        with self._lock:
            self._ungroup(subscriber)
            subscriber.filter = filters
            self._groups.setdefault(filters, set()).add(subscriber)

    def _ungroup(self, subscriber: Subscriber) -> None:
        group = self._groups.get(subscriber.filter)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self._groups[subscriber.filter]

    def _run(self) -> None:
        backoff, first = BACKOFF_FIRST, True
        while True:
            started = time.monotonic()
            try:
                self._listen(resync=not first)
            except (redis.RedisError, OSError) as exc:
                log.warning("live subscription lost (%s); reconnecting in %.2fs", exc, backoff)
            except Exception:
                log.exception("live hub failed; restarting in %.2fs", backoff)
            was_up = self._ready.is_set()
            self._ready.clear()
            first = False
            # Back for a while before this loss: start the backoff over.
            if was_up and time.monotonic() - started > backoff:
                backoff = BACKOFF_FIRST
            time.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _listen(self, resync: bool) -> None:
        client = redis.Redis.from_url(
            self.settings.redis_url,
            protocol=2,
            socket_connect_timeout=2,
            health_check_interval=15,
            client_name=f"{self.settings.key_prefix}:hub",  # findable in CLIENT LIST
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.settings.pubsub_channel)
            # Wait for the server's confirmation: only from then on is nothing missed.
            while (pubsub.get_message(timeout=1.0) or {}).get("type") != "subscribe":
                pass
            self._ready.set()
            if resync:
                for _, subs in self._snapshot():
                    for sub in subs:
                        sub.offer(RESYNC)
            for message in pubsub.listen():
                if message["type"] == "message":
                    self._deliver(message["data"])
        finally:
            pubsub.close()
            client.close()

    def _deliver(self, data: bytes) -> None:
        try:
            message = jsoncodec.loads(data)
            logs, published = message["logs"], message.get("published")
            if not all(isinstance(e, dict) and isinstance(e.get("id"), int) for e in logs):
                raise ValueError("not a list of stored logs")
            for filters, subs in self._snapshot():
                try:
                    batch = self._batch(filters, logs, published)
                except SQLAlchemyError as exc:  # `q` needs the database: read back later
                    log.warning("live full-text filter failed (%s); resyncing its clients", exc)
                    batch = RESYNC
                if batch is not None:
                    self._offer(batch, subs)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("skipped a malformed message on %s: %s", self.settings.pubsub_channel, exc)

    def _batch(self, filters: Filters, logs: list[dict], published=None) -> Batch | None:
        """The logs passing `filters`, encoded once; None when none does."""
        matching = [entry for entry in logs if filters.match(entry)]
        if matching and filters.q:
            with engine(self.settings.database_read_url).connect() as conn:
                found = search_messages(conn, filters.q, [e["message"] for e in matching])
            matching = [entry for entry, ok in zip(matching, found, strict=True) if ok]
        if not matching:
            return None
        frame = self.encode(jsoncodec.dumps({"type": "logs", "logs": matching}))
        return Batch(matching, frame, published)

    def _offer(self, batch, subs: tuple[Subscriber, ...]) -> None:
        """Hand one batch to one filter's subscribers; time the frames sent at once."""
        sent = 0
        for sub in subs:
            sent += sub.offer(batch)
        if sent and isinstance(batch, Batch) and isinstance(batch.published, float):
            # One observation per frame and client, taken once after the group's writes
            # (so an upper bound for each), instead of a sample per client.
            delay = time.time() - batch.published
            r = redis_client(self.settings.redis_url)
            histograms.process_buffer.add(
                r, self.settings, "live_fanout_seconds", delay, count=sent
            )

    def _snapshot(self) -> list[tuple[Filters, tuple[Subscriber, ...]]]:
        with self._lock:
            return [(filters, tuple(subs)) for filters, subs in self._groups.items()]
