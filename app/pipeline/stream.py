"""The Redis Stream between ingest and the drain: enqueue, read, ack, dead-letter, trim.

Entry layout: a structured log is one field `d` (its JSON); a raw line is `r` (the line)
and `f` (the format asked for, or empty for detection in the drain).

The stream is bounded by refusing new entries, never by trimming: `enqueue` rejects a
batch that would push the backlog past `STREAM_MAXLEN`, and `trim_acked` removes only
entries that every reader has acknowledged (stored or dead-lettered).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from app.pipeline import counters, histograms
from config import Settings

log = logging.getLogger(__name__)

# Check the cap and append the whole batch atomically, in one round trip.
# KEYS[1] stream, KEYS[2] (optional) a once-key; ARGV[1] cap, ARGV[2] k (fields per
# entry), ARGV[3] the once-key's TTL in seconds, ARGV[4..3+k] field names, then the
# values, k per entry. Returns the new ids, {err="FULL <length>"}, or {err="SEEN"} when
# the once-key exists (the batch was appended before: a retried Heroku frame). The
# once-key is set in the same script, so "appended" and "seen" can never disagree.
_ENQUEUE = """
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('SEEN')
end
local length = redis.call('XLEN', KEYS[1])
local k = tonumber(ARGV[2])
local n = (#ARGV - 3 - k) / k
if length + n > tonumber(ARGV[1]) then
  return redis.error_reply('FULL ' .. length)
end
local ids = {}
local args = {}
for e = 0, n - 1 do
  for f = 1, k do
    args[2 * f - 1] = ARGV[3 + f]
    args[2 * f] = ARGV[3 + k + e * k + f]
  end
  ids[e + 1] = redis.call('XADD', KEYS[1], '*', unpack(args, 1, 2 * k))
end
if KEYS[2] then
  redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[3]))
end
return ids
"""


# Ack entries one by one and count as stored those this call settled (XACK 1): an
# entry another consumer acked meanwhile was counted there. KEYS[1] stream, KEYS[2] the
# counters hash; ARGV[1] group, then the ids. Returns how many were counted.
_ACK_COUNTING = """
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
end
if n > 0 then
  redis.call('HINCRBY', KEYS[2], 'drain_stored', n)
end
return n
"""


class AlreadySeen(Exception):
    """The batch's once-key exists: it was appended before and is not appended again."""


class QueueFull(Exception):
    """The stream holds `length` entries not yet stored, at or beyond its cap."""

    def __init__(self, length: int) -> None:
        super().__init__(f"stream backlog {length} at cap")
        self.length = length


@dataclass(slots=True)
class Entry:
    """One stream entry as the drain sees it."""

    id: str
    fields: dict[bytes, bytes]
    deliveries: int = 1


def ensure_group(r: redis.Redis, settings: Settings) -> None:
    """Create the consumer group (and the stream) if missing, reading from the beginning."""
    try:
        r.xgroup_create(settings.stream_name, settings.consumer_group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def enqueue(
    r: redis.Redis,
    settings: Settings,
    names: tuple[bytes, ...],
    values: list,
    once: tuple[str, int] | None = None,
) -> list[str]:
    """Append entries (each `len(names)` values, flattened) atomically; return their ids.

    `once` is (key, ttl seconds): append only if `key` does not exist, and set it with
    the append (AlreadySeen otherwise)."""
    if not values:
        return []
    script = r.register_script(_ENQUEUE)
    keys = [settings.stream_name, *([once[0]] if once else [])]
    ttl = once[1] if once else 0
    try:
        ids = script(keys=keys, args=[settings.stream_maxlen, len(names), ttl, *names, *values])
    except redis.ResponseError as exc:
        if str(exc).startswith("FULL"):
            raise QueueFull(int(str(exc).split()[1])) from None
        if str(exc) == "SEEN":
            raise AlreadySeen() from None
        raise
    return [i.decode() for i in ids]


def read_chunk(r: redis.Redis, settings: Settings, consumer: str, block_ms: int) -> list[Entry]:
    """Up to BATCH_SIZE entries for `consumer`: recovered ones first (`read_recovered`),
    else new ones (`read_new`)."""
    return read_recovered(r, settings, consumer) or read_new(r, settings, consumer, block_ms)


def read_recovered(r: redis.Redis, settings: Settings, consumer: str) -> list[Entry]:
    """Entries delivered but never acked: this consumer's own first, then those other
    consumers left idle past CLAIM_IDLE_MS (a killed worker). Never blocks."""
    own = _read(r, settings, consumer, "0", settings.batch_size, None)
    if own:
        return _with_deliveries(r, settings, own)
    return claim_idle(r, settings, consumer)


def read_new(r: redis.Redis, settings: Settings, consumer: str, block_ms: int) -> list[Entry]:
    """Up to BATCH_SIZE never-delivered entries, waiting up to `block_ms` for some."""
    fresh = _read(r, settings, consumer, ">", settings.batch_size, block_ms)
    return [Entry(i, f, 1) for i, f in fresh]


def _read(r, settings, consumer, start, count, block):
    reply = r.xreadgroup(
        settings.consumer_group, consumer, {settings.stream_name: start}, count=count, block=block
    )
    if not reply:
        return []
    # Own-history reads return deleted entries as (id, None); they cannot be stored, so
    # they are acked by the caller as dead letters with an empty body.
    return [(i.decode(), f or {}) for i, f in reply[0][1]]


def _with_deliveries(r, settings, entries) -> list[Entry]:
    ids = [i for i, _ in entries]
    pending = r.xpending_range(
        settings.stream_name, settings.consumer_group, min=ids[0], max=ids[-1], count=len(ids) + 10
    )
    counts = {p["message_id"].decode(): p["times_delivered"] for p in pending}
    return [Entry(i, f, counts.get(i, 1)) for i, f in entries]


def claim_idle(r: redis.Redis, settings: Settings, consumer: str) -> list[Entry]:
    """Take over entries idle past CLAIM_IDLE_MS on other consumers (e.g. a killed worker)."""
    pending = r.xpending_range(
        settings.stream_name,
        settings.consumer_group,
        min="-",
        max="+",
        count=settings.batch_size,
        idle=settings.claim_idle_ms,
    )
    mine = consumer.encode()
    wanted = {p["message_id"]: p["times_delivered"] for p in pending if p["consumer"] != mine}
    if not wanted:
        return []
    claimed = r.xclaim(
        settings.stream_name,
        settings.consumer_group,
        consumer,
        settings.claim_idle_ms,
        list(wanted),
    )
    # An id not returned was claimed by another consumer first (its idle time restarted):
    # it is theirs now. One returned without a body was deleted from the stream by hand;
    # it can only be dead-lettered.
    if claimed:  # a retry: their consumer left them idle past CLAIM_IDLE_MS
        log.warning(
            "redelivering %s entries idle over %sms on other consumers",
            len(claimed),
            settings.claim_idle_ms,
        )
    return [Entry(i.decode(), f or {}, wanted[i] + 1) for i, f in claimed]


def acknowledge(
    r: redis.Redis,
    settings: Settings,
    ids: list[str],
    dead: list[tuple[Entry, str]],
    recovered: list[str] = (),
    timings: dict[str, list[float]] | None = None,
    **counts: int,
) -> int:
    """Dead-letter the failed entries, ack every id and add `counts` to the shared
    counters and `timings` to the histograms, in one MULTI transaction. `recovered` ids
    (found already stored) are counted as stored only where this ack is the one that
    settles them; return how many."""
    if not ids and not dead and not recovered:
        return 0
    pipe = r.pipeline(transaction=True)
    counters.count(pipe, settings, **counts)
    for name, values in (timings or {}).items():
        histograms.observe(pipe, settings, name, values)
    for entry, reason in dead:
        pipe.xadd(
            settings.dead_letter_stream,
            {
                **entry.fields,
                b"stream_id": entry.id,
                b"reason": reason,
                b"deliveries": entry.deliveries,
            },
            maxlen=settings.dead_letter_maxlen,
            approximate=True,
        )
    all_ids = ids + [e.id for e, _ in dead]
    if all_ids:
        pipe.xack(settings.stream_name, settings.consumer_group, *all_ids)
    if recovered:
        keys = [settings.stream_name, counters.key(settings)]
        r.register_script(_ACK_COUNTING)(
            keys=keys, args=[settings.consumer_group, *recovered], client=pipe
        )
    replies = pipe.execute()
    return int(replies[-1]) if recovered else 0


def trim_acked(r: redis.Redis, settings: Settings) -> int:
    """Remove entries every consumer has acked; return how many went."""
    group = _group_info(r, settings)
    if group is None:
        return 0
    safe = group["last-delivered-id"].decode()
    if group["pending"]:
        summary = r.xpending(settings.stream_name, settings.consumer_group)
        safe = min(safe, summary["min"].decode(), key=_id_key)
    return r.xtrim(settings.stream_name, minid=safe, approximate=False)


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _groups(r, settings) -> list[dict]:
    try:
        return r.xinfo_groups(settings.stream_name)
    except redis.ResponseError:  # no stream yet
        return []


def _group_info(r, settings) -> dict | None:
    name = settings.consumer_group.encode()
    return next((g for g in _groups(r, settings) if g["name"] == name), None)


def status(r: redis.Redis, settings: Settings) -> dict:
    """What `GET /queue/status` reports: length, pending, lag, groups, consumers, dead letters."""
    pipe = r.pipeline(transaction=False)
    pipe.xlen(settings.stream_name)
    pipe.xlen(settings.dead_letter_stream)
    pipe.xrevrange(settings.stream_name, count=1)
    length, dead, last = pipe.execute()
    groups = _groups(r, settings)
    name = settings.consumer_group.encode()
    group = next((g for g in groups if g["name"] == name), None)
    pending, lag, consumers = 0, length, []
    if group is not None:
        pending, lag = group["pending"], _lag(r, settings, group)
        consumers = [
            {"name": c["name"].decode(), "pending": c["pending"], "idle_ms": c["idle"]}
            for c in r.xinfo_consumers(settings.stream_name, settings.consumer_group)
        ]
    return {
        "queue_name": settings.stream_name,
        "length": length,
        "pending_messages": pending,
        "lag": lag,
        "consumer_groups": [
            {
                "name": g["name"].decode(),
                "consumers": g["consumers"],
                "pending": g["pending"],
                "lag": g.get("lag"),
            }
            for g in groups
        ],
        "consumers": consumers,
        "last_message_id": last[0][0].decode() if last else None,
        "dead_letters": dead,
        "dead_letter_stream": settings.dead_letter_stream,
        "max_length": settings.stream_maxlen,
    }


def _lag(r, settings, group: dict) -> int:
    if group.get("lag") is not None:
        return group["lag"]
    # Redis cannot always tell after deletions; count what follows the last delivery.
    after = "(" + group["last-delivered-id"].decode()
    return len(r.xrange(settings.stream_name, min=after, max="+"))


def lag(r: redis.Redis, settings: Settings) -> int:
    """Entries not yet delivered to any consumer of the group."""
    group = _group_info(r, settings)
    return r.xlen(settings.stream_name) if group is None else _lag(r, settings, group) or 0


def oldest_undrained_age(r: redis.Redis, settings: Settings, now: float) -> float:
    """Seconds since the oldest entry not yet acked was accepted (0 when none waits):
    the oldest pending entry, else the first one after the group's last delivery."""
    group = _group_info(r, settings)
    if group is None:
        first = r.xrange(settings.stream_name, count=1)
    elif group["pending"]:
        first = [(r.xpending(settings.stream_name, settings.consumer_group)["min"], None)]
    else:
        after = "(" + group["last-delivered-id"].decode()
        first = r.xrange(settings.stream_name, min=after, max="+", count=1)
    if not first:
        return 0.0
    return max(0.0, now - _id_key(first[0][0].decode())[0] / 1000)


def forget_idle_consumers(r: redis.Redis, settings: Settings, idle_ms: int) -> list[str]:
    """Delete consumers with nothing pending that have been idle for `idle_ms` (old pids)."""
    try:
        found = r.xinfo_consumers(settings.stream_name, settings.consumer_group)
    except redis.ResponseError:
        return []
    gone = []
    for c in found:
        if c["pending"] == 0 and c["idle"] > idle_ms:
            r.xgroup_delconsumer(settings.stream_name, settings.consumer_group, c["name"])
            gone.append(c["name"].decode())
    return gone
