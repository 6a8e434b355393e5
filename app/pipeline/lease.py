"""A lease in Redis that lets one drain run at a time.

A drain reads for DRAIN_BUDGET, then hands over to a successor task, so one drain is
always blocked on the stream. Beat also schedules a drain every DRAIN_INTERVAL, to
restart that chain should it be lost; one that finds the lease held returns at once, a
cheap no-op that succeeds, instead of waiting in the queue until it expires (Flower
showed those as REVOKED). The lease is an economy, not a guarantee: should two drains ever
overlap (a lease that expired under a stalled chunk), exactly-once still holds, since
entries stay pending until acked and inserts are keyed on the stream id.
"""

from __future__ import annotations

import uuid

import redis

from config import Settings

# Release only our own lease: one that expired and was taken by another drain stays.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Past the budget, a drain finishes the chunk it has read; this covers that chunk. A
# killed worker's lease lapses after budget + grace, and the next drain takes over.
GRACE_SECONDS = 5.0


def key(settings: Settings) -> str:
    """The Redis key of the drain lease."""
    return f"{settings.key_prefix}:drain-lease"


def acquire(r: redis.Redis, settings: Settings) -> str | None:
    """Take the lease for one drain; return its token, or None if another drain holds it."""
    token = uuid.uuid4().hex
    ttl_ms = int((settings.drain_budget + GRACE_SECONDS) * 1000)
    return token if r.set(key(settings), token, nx=True, px=ttl_ms) else None


def release(r: redis.Redis, settings: Settings, token: str) -> None:
    """Give the lease back, if it is still ours."""
    r.register_script(_RELEASE)(keys=[key(settings)], args=[token])
