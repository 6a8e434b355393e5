"""Fan-out of stored logs: the drain publishes, each web process subscribes once.

Pub/Sub is not durable and is not treated as such: a message is `{"logs": [...]}` for
logs already committed to PostgreSQL, so anything missed here (a slow client, a Redis
reconnect) can be read back from the database by id. One `Hub` per web process holds one
Redis subscription and hands each message to its connected clients' bounded buffers;
a full buffer drops for that client only and counts what it dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import orjson
import redis

from app.pipeline import jsoncodec

log = logging.getLogger(__name__)

# Put in a client's buffer when the hub lost its subscription for a while: the client
# must catch up from the database, since messages published meanwhile are gone.
RESYNC = object()


def publish(r: redis.Redis, channel: str, logs: list[dict]) -> int:
    """Publish stored logs (already JSON-safe dicts); return the number of receivers."""
    if not logs:
        return 0
    return r.publish(channel, jsoncodec.dumps({"logs": logs}))


class Subscriber:
    """One connected client's side of the hub: a bounded buffer and a drop counter."""

    def __init__(self, filter, maxsize: int) -> None:
        self.filter = filter  # has .match(log) -> bool; replaced when the client changes it
        self.buffer: queue.Queue = queue.Queue(maxsize)
        self.dropped = 0

    def offer(self, logs: list[dict]) -> None:
        """Queue the matching logs, or count them as dropped if the buffer is full."""
        match = self.filter.match
        matching = [entry for entry in logs if match(entry)]
        if not matching:
            return
        try:
            self.buffer.put_nowait(matching)
        except queue.Full:
            self.dropped += len(matching)

    def resync(self) -> None:
        """Tell the client's handler that it must catch up from the database."""
        try:
            self.buffer.put_nowait(RESYNC)
        except queue.Full:
            self.dropped += 1


class Hub:
    """One Redis subscription per process, fanned out to `Subscriber`s."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self._subscribers: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def count(self) -> int:
        return len(self._subscribers)

    def add(self, subscriber: Subscriber, timeout: float = 5.0) -> None:
        """Register a subscriber; returns once the Redis subscription is live."""
        with self._lock:
            self._subscribers.add(subscriber)
            if self._thread is None or not self._thread.is_alive():
                self._ready.clear()
                self._thread = threading.Thread(target=self._run, name="sluice-hub", daemon=True)
                self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("live subscription to Redis is not ready")

    def remove(self, subscriber: Subscriber) -> None:
        """Forget a subscriber (its connection closed)."""
        with self._lock:
            self._subscribers.discard(subscriber)

    def _run(self) -> None:
        backoff = 0.5
        first = True
        while True:
            try:
                self._listen(resync=not first)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning("live subscription lost (%s); reconnecting in %.1fs", exc, backoff)
                self._ready.clear()
                first = False
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _listen(self, resync: bool) -> None:
        client = redis.Redis.from_url(
            self.redis_url, protocol=2, socket_connect_timeout=2, health_check_interval=15
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            # Wait for the server's confirmation: only from then on is nothing missed.
            while (pubsub.get_message(timeout=1.0) or {}).get("type") != "subscribe":
                pass
            self._ready.set()
            if resync:
                for sub in self._snapshot():
                    sub.resync()
            for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                logs = orjson.loads(message["data"])["logs"]
                for sub in self._snapshot():
                    sub.offer(logs)
        finally:
            pubsub.close()
            client.close()

    def _snapshot(self) -> list[Subscriber]:
        with self._lock:
            return list(self._subscribers)
