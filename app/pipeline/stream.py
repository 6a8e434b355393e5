"""The Redis Stream between ingest and the drain: enqueue, read, ack, dead-letter, trim.

Entry layout: a structured log is one field `d` (its JSON); a raw line is `r` (the line)
and `f` (the format asked for, or empty for detection in the drain).

The stream is bounded by refusing new entries, never by trimming: `enqueue` rejects a
batch that would push the backlog past `STREAM_MAXLEN` entries or `QUEUE_MAX_BYTES`
(QueueFull), or Redis past `REDIS_MEMORY_HIGH` of its `maxmemory` (RedisMemoryHigh), and
`trim_acked` removes only entries that every reader has acknowledged (stored or
dead-lettered). The dead-letter stream is the one trimmed: by entries and by bytes,
oldest first, each trimmed entry counted.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import orjson
import redis
from redis.commands.core import Script

from app.pipeline import counters, histograms
from config import Settings

log = logging.getLogger(__name__)

# The whole of an ingest request's Redis work, in one round trip: the retry key, the
# caps (entries, the stream's bytes), the appends and the counters.
# KEYS[1] stream, KEYS[2] counters hash, KEYS[3] this 10 s bucket of accepted logs (the
# system page's series, counters.sample), KEYS[4] (optional) a once-key.
# ARGV[1] cap in entries, ARGV[2] cap in bytes (the stream's MEMORY USAGE), ARGV[3] the
# batch's bytes, ARGV[4] k (fields per entry), ARGV[5] the once-key's TTL, ARGV[6] the
# request's fingerprint ("" for none), ARGV[7] the answer to keep with the key, ARGV[8]
# more counters to add ({name: amount > 0} as JSON: the request's rejects, replaced
# timestamps; "" for none), ARGV[9..8+k] field names, then the values, k per entry.
# Returns {"OK", ids}, {"SEEN", kept} or {"FULL", length, bytes}. Redis's own memory is
# read outside it (`_check_memory`): INFO costs more than the rest of the script.
# The once-key is checked and set in the same script, so two concurrent retries can
# never both append, and "appended" and "seen" never disagree.
_ENQUEUE = """
local k = tonumber(ARGV[4])
local n = (#ARGV - 8 - k) / k
if KEYS[4] then
  local kept = redis.call('GET', KEYS[4])
  if kept then
    redis.call('HINCRBY', KEYS[2], 'ingest_retries_skipped', n)
    return {'SEEN', kept}
  end
end
local length = redis.call('XLEN', KEYS[1])
local size = tonumber(ARGV[3])
local used = redis.call('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', '5') or 0
if length + n > tonumber(ARGV[1]) or used + size > tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], 'ingest_refused_queue_full', 1)
  return {'FULL', length, used}
end
local ids = {}
local args = {}
for e = 0, n - 1 do
  for f = 1, k do
    args[2 * f - 1] = ARGV[8 + f]
    args[2 * f] = ARGV[8 + k + e * k + f]
  end
  ids[e + 1] = redis.call('XADD', KEYS[1], '*', unpack(args, 1, 2 * k))
end
if KEYS[4] then
  -- Ids count up within a millisecond: kept as runs of {ms, first sequence, how many},
  -- not a day of every id in full.
  local runs, ms, seq, count = {}, nil, 0, 0
  for i = 1, n do
    local m, s = string.match(ids[i], '(%d+)-(%d+)')
    s = tonumber(s)
    if m == ms and s == seq + count then
      count = count + 1
    else
      if ms then
        runs[#runs + 1] = {ms, seq, count}
      end
      ms, seq, count = m, s, 1
    end
  end
  runs[#runs + 1] = {ms, seq, count}
  local kept = {fingerprint = ARGV[6], answer = ARGV[7], runs = runs}
  redis.call('SET', KEYS[4], cjson.encode(kept), 'EX', tonumber(ARGV[5]))
end
redis.call('HINCRBY', KEYS[2], 'ingest_accepted', n)
if redis.call('INCRBY', KEYS[3], n) == n then  -- a new bucket
  redis.call('EXPIRE', KEYS[3], SERIES_KEEP)
end
if ARGV[8] ~= '' then
  for name, amount in pairs(cjson.decode(ARGV[8])) do
    redis.call('HINCRBY', KEYS[2], name, amount)
  end
end
return {'OK', ids}
"""

# The dead-letter stream's bounds, applied after each chunk's dead letters are added:
# at most ARGV[1] entries and ARGV[2] bytes (MEMORY USAGE), oldest first; what falls off
# is counted. KEYS[1] dead-letter stream, KEYS[2] counters hash. Returns how many went.
_BOUND_DEAD = """
local dropped = 0
local length = redis.call('XLEN', KEYS[1])
if length > tonumber(ARGV[1]) then
  dropped = redis.call('XTRIM', KEYS[1], 'MAXLEN', tonumber(ARGV[1]))
  length = length - dropped
end
local used = redis.call('MEMORY', 'USAGE', KEYS[1], 'SAMPLES', '5') or 0
if used > tonumber(ARGV[2]) and length > 0 then
  local keep = math.floor(length * tonumber(ARGV[2]) / used)
  dropped = dropped + redis.call('XTRIM', KEYS[1], 'MAXLEN', keep)
end
if dropped > 0 then
  redis.call('HINCRBY', KEYS[2], 'dead_letters_dropped', dropped)
end
return dropped
"""

# The drain rate, measured where the drain acks: entries settled are summed over windows
# of at least 5 s (Redis's clock); a finished window's rate is kept for `retry_after`.
# KEYS[1] the rate hash; ARGV[1] entries settled now.
_MEASURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local since = tonumber(redis.call('HGET', KEYS[1], 'since'))
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0') + tonumber(ARGV[1])
if not since then
  redis.call('HSET', KEYS[1], 'since', tostring(now), 'n', n)
elseif now - since >= 5 then
  redis.call('HSET', KEYS[1], 'rate', tostring(n / (now - since)), 'at', tostring(now),
    'since', tostring(now), 'n', 0)
else
  redis.call('HSET', KEYS[1], 'n', n)
end
redis.call('EXPIRE', KEYS[1], 86400)
return n
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
    """The batch's once-key exists: it was appended before and is not appended again.
    `kept` is what the first append recorded with the key (its fingerprint, answer and
    ids), or None for a key that recorded nothing."""

    def __init__(self, kept: dict | None = None) -> None:
        super().__init__("already appended")
        self.kept = kept


class QueueFull(Exception):
    """The stream holds `length` entries (`size` bytes) not yet stored, at or beyond a
    cap (STREAM_MAXLEN entries or QUEUE_MAX_BYTES); `retry_after` in seconds."""

    def __init__(self, length: int, size: int = 0, retry_after: int = 5, room: int = 0) -> None:
        super().__init__(f"stream backlog {length} ({size} bytes) at cap")
        self.length = length
        self.size = size
        self.retry_after = retry_after
        self.room = room  # about how many entries of this batch's size would fit


class RedisMemoryHigh(redis.RedisError):
    """Redis uses `used` of its `maxmemory` bytes, past REDIS_MEMORY_HIGH: nothing is
    appended until the drain frees some (`retry_after` in seconds). A RedisError, so a
    receiver that waits out Redis errors (the syslog listener) waits this out too."""

    def __init__(self, used: int, maxmemory: int, retry_after: int = 5) -> None:
        super().__init__(f"Redis memory {used} of {maxmemory} bytes")
        self.used = used
        self.maxmemory = maxmemory
        self.retry_after = retry_after


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
    once: tuple | None = None,
    amounts: dict[str, int] | None = None,
) -> list[str]:
    """Append entries (each `len(names)` values, flattened) atomically, count them (and
    add `amounts` to other counters), and return their ids: one round trip.

    `once` is (key, ttl seconds[, fingerprint, answer]): append only if `key` does not
    exist, and set it with the append, keeping the fingerprint, answer and ids
    (AlreadySeen otherwise). QueueFull past a cap; RedisMemoryHigh past
    REDIS_MEMORY_HIGH of `maxmemory` (read at most once a second per process, so
    almost every call is the script's one round trip); both name a Retry-After from the
    drain rate."""
    if not values:
        return []
    _check_memory(r, settings)
    bucket = counters.series_key(settings, "ingest_accepted", counters.bucket(time.time()))
    keys = [settings.stream_name, counters.key(settings), bucket, *([once[0]] if once else [])]
    _, ttl, fingerprint, answer = (*once, "", "")[:4] if once else ("", 0, "", "")
    size = sum(map(len, values))
    more = {name: n for name, n in (amounts or {}).items() if n}
    args = [
        settings.stream_maxlen,
        settings.queue_max_bytes,
        size,
        len(names),
        ttl,
        fingerprint,
        answer,
        orjson.dumps(more) if more else b"",
        *names,
        *values,
    ]
    try:
        reply = ENQUEUE(keys=keys, args=args, client=r)
    except redis.ResponseError as exc:
        raise out_of_memory(exc) or exc from None
    kind = reply[0]
    if kind == b"OK":
        return [i.decode() for i in reply[1]]
    if kind == b"SEEN":
        raise AlreadySeen(_kept(reply[1]))
    # FULL
    length, used, n = int(reply[1]), int(reply[2]), len(values) // len(names)
    room = settings.stream_maxlen - length
    excess = length + n - settings.stream_maxlen
    if used + size > settings.queue_max_bytes:
        room = min(room, (settings.queue_max_bytes - used) * n // size)
        per_entry = used / length if length else size / n
        excess = max(excess, int((used + size - settings.queue_max_bytes) / per_entry))
    wait = retry_after(r, settings, max(excess, 1))
    raise QueueFull(length, used, wait, max(room, 0))


# Per Redis client: (when read, used_memory, maxmemory). INFO memory walks every client
# and database, so each process reads it at most once a second, not once per request.
_MEMORY: dict[int, tuple[float, int, int]] = {}
MEMORY_CHECK_SECONDS = 1.0


def memory(r: redis.Redis) -> tuple[int, int]:
    """(used_memory, maxmemory) of Redis, read at most once a second per client."""
    now = time.monotonic()
    found = _MEMORY.get(id(r))
    if found is None or now - found[0] > MEMORY_CHECK_SECONDS:
        info = r.info("memory")
        found = _MEMORY[id(r)] = (now, int(info["used_memory"]), int(info["maxmemory"]))
    return found[1], found[2]


def _check_memory(r: redis.Redis, settings: Settings) -> None:
    used, maxmemory = memory(r)
    if not maxmemory or used <= maxmemory * settings.redis_memory_high:
        return
    _MEMORY.pop(id(r), None)  # while refusing, read it afresh each time
    counters.add(r, settings, ingest_refused_redis_memory=1)
    length = r.xlen(settings.stream_name)
    per_entry = (r.memory_usage(settings.stream_name, samples=5) or 0) / length if length else 0
    over = used - maxmemory * settings.redis_memory_high
    entries = int(over / per_entry) + 1 if per_entry else 1
    raise RedisMemoryHigh(used, maxmemory, retry_after(r, settings, entries))


def out_of_memory(exc: redis.ResponseError) -> redis.exceptions.OutOfMemoryError | None:
    """`exc` as the OutOfMemoryError it is when a write inside a script hit maxmemory
    (Redis words it as a script error), else None."""
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return exc
    if "OOM command not allowed" in str(exc):
        return redis.exceptions.OutOfMemoryError(str(exc))
    return None


def _kept(raw: bytes) -> dict | None:
    try:
        kept = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(kept, dict):  # an older key (Heroku's frame ids) kept only "1"
        return None
    runs = kept.pop("runs", [])  # [ms, first sequence, how many] each
    kept["ids"] = [f"{ms}-{int(seq) + i}" for ms, seq, count in runs for i in range(int(count))]
    return kept


def _script(source: str) -> Script:
    # Bound to no client (each call names one): the SHA is computed once per process,
    # not per request.
    return Script(None, source.encode())


ENQUEUE, BOUND_DEAD, MEASURE, ACK_COUNTING = (
    _script(s)
    for s in (
        _ENQUEUE.replace("SERIES_KEEP", str(counters.SERIES_KEEP)),
        _BOUND_DEAD,
        _MEASURE,
        _ACK_COUNTING,
    )
)


def rate_key(settings: Settings) -> str:
    """The Redis hash where the drain's rate is measured."""
    return f"{settings.key_prefix}:drain_rate"


def drain_rate(r: redis.Redis, settings: Settings) -> tuple[float, float] | None:
    """(entries settled per second over the last finished window, seconds since), or
    None before the drain has finished one."""
    rate, at = r.hmget(rate_key(settings), "rate", "at")
    if rate is None:
        return None
    seconds, micros = r.time()
    return float(rate), max(0.0, seconds + micros / 1e6 - float(at))


def retry_after(r: redis.Redis, settings: Settings, entries: int) -> int:
    """Seconds until the drain has likely settled `entries` more entries at its measured
    rate, between 1 and 60: 5 before any rate is known, 60 when the drain has settled
    nothing for a minute (it is stalled or gone)."""
    try:
        measured = drain_rate(r, settings)
    except redis.RedisError:
        return 5
    if measured is None:
        return 5
    rate, age = measured
    if rate <= 0 or age > 60:
        return 60
    return max(1, min(60, math.ceil(entries / rate)))


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
        )
    if dead:  # bounded by entries and by bytes; what falls off is counted
        BOUND_DEAD(
            keys=[settings.dead_letter_stream, counters.key(settings)],
            args=[settings.dead_letter_maxlen, settings.dead_letter_max_bytes],
            client=pipe,
        )
    all_ids = ids + [e.id for e, _ in dead]
    if all_ids:
        pipe.xack(settings.stream_name, settings.consumer_group, *all_ids)
    settled = len(all_ids) + len(recovered)
    if settled:
        MEASURE(keys=[rate_key(settings)], args=[settled], client=pipe)
    if recovered:
        keys = [settings.stream_name, counters.key(settings)]
        ACK_COUNTING(keys=keys, args=[settings.consumer_group, *recovered], client=pipe)
    replies = pipe.execute()
    return int(replies[-1]) if recovered else 0


def trim_acked(r: redis.Redis, settings: Settings) -> int:
    """Remove entries every consumer has acked; return how many went."""
    group = _group_info(r, settings)
    if group is None:
        return 0
    safe = group["last-delivered-id"].decode()
    if group["pending"]:
        oldest = r.xpending(settings.stream_name, settings.consumer_group)["min"]
        if oldest is not None:  # None: another consumer acked the rest meanwhile
            safe = min(safe, oldest.decode(), key=_id_key)
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
