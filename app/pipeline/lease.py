"""Leases in Redis that let DRAIN_WRITERS drains run at a time, one per slot.

A drain reads for DRAIN_BUDGET, then hands over to a successor task, so each slot's
chain always has a drain blocked on the stream. Beat also schedules a drain every
DRAIN_INTERVAL, to restart a chain should one be lost; a drain that finds every slot held
returns at once, a cheap no-op that succeeds, instead of waiting in the queue until it
expires (Flower showed those as REVOKED). So an idle system shows DRAIN_WRITERS chains
and beat's no-ops, whatever the number of worker processes. The leases are an economy,
not a guarantee: drains in parallel are safe (entries stay pending until acked, inserts
are keyed on the stream id, `app.pipeline.store` orders their commits), and so is one
more than DRAIN_WRITERS should a lease expire under a stalled chunk.
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


def key(settings: Settings, slot: int = 0) -> str:
    """The Redis key of one slot's drain lease."""
    return f"{settings.key_prefix}:drain-lease" + (f":{slot}" if slot else "")


def acquire(r: redis.Redis, settings: Settings) -> str | None:
    """Take the first free slot's lease; return its token ("<slot>:<random>"), or None
    if DRAIN_WRITERS drains hold them all."""
    ttl_ms = int((settings.drain_budget + GRACE_SECONDS) * 1000)
    for slot in range(settings.drain_writers):
        token = f"{slot}:{uuid.uuid4().hex}"
        if r.set(key(settings, slot), token, nx=True, px=ttl_ms):
            return token
    return None


def release(r: redis.Redis, settings: Settings, token: str) -> None:
    """Give the lease back, if it is still ours."""
    slot = int(token.split(":", 1)[0])
    r.register_script(_RELEASE)(keys=[key(settings, slot)], args=[token])
