"""Latency histograms every process shares, kept in one Redis hash (as the counters are).

Each observation adds to one bucket field (`name|label|le`, not cumulative) and to the
`name|label|sum` field; `GET /metrics` adds the buckets up at scrape time. The drain's
observations ride in its ack's MULTI; those made per request or per frame are gathered
in-process by a `Buffer` and written at most once a second, so a request costs no extra
round trip to Redis (a process that stops loses at most its last second of samples).
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import defaultdict

import redis

from config import Settings

log = logging.getLogger(__name__)

LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# name: (help, label name or None, bucket upper bounds)
HISTOGRAMS = {
    "accept_to_commit_seconds": (
        "Delay from acceptance (the stream entry's time) to commit in PostgreSQL, per log",
        None,
        LATENCY,
    ),
    "drain_chunk_seconds": (
        "Time one drain chunk takes, from its read to its ack",
        None,
        LATENCY,
    ),
    "request_seconds": (
        "HTTP request duration by endpoint family (the blueprint)",
        "family",
        LATENCY,
    ),
    "live_fanout_seconds": (
        "Delay from a publish to the WebSocket frame sent to a client",
        None,
        LATENCY,
    ),
}
INF = "+Inf"


def key(settings: Settings) -> str:
    """The Redis hash holding the histograms."""
    return f"{settings.key_prefix}:histograms"


def observe(
    pipe: redis.client.Pipeline, settings: Settings, name: str, values: list[float], label=""
) -> None:
    """Queue the HINCRBYs for `values` on `pipe` (the caller executes it)."""
    if not values:
        return
    bounds = HISTOGRAMS[name][2]
    per_bucket: dict[str, int] = defaultdict(int)
    for value in values:
        i = bisect.bisect_left(bounds, value)
        per_bucket[str(bounds[i]) if i < len(bounds) else INF] += 1
    for le, n in per_bucket.items():
        pipe.hincrby(key(settings), f"{name}|{label}|{le}", n)
    pipe.hincrbyfloat(key(settings), f"{name}|{label}|sum", sum(values))


def record(r: redis.Redis, settings: Settings, name: str, values: list[float], label="") -> None:
    """Observe now; best effort: a measurement never fails the work it measures."""
    try:
        pipe = r.pipeline(transaction=False)
        observe(pipe, settings, name, values, label)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not record %s %s: %s", name, label, exc)


class Buffer:
    """Observations gathered in one process, written to Redis at most every `period`."""

    def __init__(self, period: float = 1.0) -> None:
        self.period = period
        # Keyed by the settings too: tests build many apps in one process.
        self._values: dict[tuple, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        self._since = time.monotonic()

    def add(
        self, r: redis.Redis, settings: Settings, name: str, value: float, label="", count=1
    ) -> None:
        """Note one observation (`count` alike); write what was gathered once `period` has
        passed."""
        with self._lock:
            self._values[(settings, name, label)].extend([value] * count)
        if time.monotonic() - self._since >= self.period:
            self.flush(r)

    def flush(self, r: redis.Redis) -> None:
        """Write everything gathered so far in one pipeline."""
        with self._lock:
            values, self._values = self._values, defaultdict(list)
            self._since = time.monotonic()
        if not values:
            return
        try:
            pipe = r.pipeline(transaction=False)
            for (settings, name, label), vs in values.items():
                observe(pipe, settings, name, vs, label)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not record %s histogram samples: %s", len(values), exc)


# This process's samples of per-request and per-frame timings (web processes).
process_buffer = Buffer()


def snapshot(r: redis.Redis, settings: Settings) -> dict[str, dict[str, tuple[list, float]]]:
    """Per histogram, per label value: (cumulative [(le, count)] ending in +Inf, sum)."""
    raw: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for field, value in r.hgetall(key(settings)).items():
        name, label, le = field.decode().split("|")
        raw[(name, label)][le] = float(value)
    out: dict[str, dict[str, tuple[list, float]]] = {name: {} for name in HISTOGRAMS}
    for (name, label), fields in raw.items():
        if name not in HISTOGRAMS:
            continue
        total, buckets = 0, []
        for le in [*map(str, HISTOGRAMS[name][2]), INF]:
            total += int(fields.get(le, 0))
            buckets.append((le, total))
        out[name][label] = (buckets, fields.get("sum", 0.0))
    return out
