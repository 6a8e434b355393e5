"""Idempotency-Key: a client's retry of a request is answered as the first time was.

A key is kept for `TTL` (24 h) in Redis under the app's key prefix, per endpoint, with
the request's fingerprint (a hash of what was sent) and what the first request answered.
A retry with the same key and fingerprint stores nothing and gets that answer again; the
same key with a different request is refused (`Mismatch`), as Stripe does.

`POST /data/fast` checks and sets its key inside the enqueue script (`stream.enqueue`),
so two concurrent retries can never both append. `POST /data/` stores in PostgreSQL, so
it claims the key first (`claim`, SET NX), stores, then records the answer (`remember`);
a failure releases the claim so the client's retry can go ahead (`release`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
import redis

from config import Settings

TTL = 24 * 3600
# How long a claim waits for its answer: longer than any request runs. A process killed
# after its commit and before `remember` leaves the key claimed for this long (a retry
# meanwhile is told the first request is in progress), never stored twice before then.
CLAIM_TTL = 15 * 60
HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255


class Mismatch(Exception):
    """The key was first used with a different request."""


class InProgress(Exception):
    """The key's first request has not answered yet."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the first request with a key answered."""

    status: int
    body: bytes


def check_key(value: str) -> str | None:
    """The problem with a header value, or None when it can be used as a key."""
    if not value.strip():
        return f"{HEADER} must not be blank."
    if len(value) > MAX_KEY_CHARS:
        return f"{HEADER} is longer than {MAX_KEY_CHARS} characters."
    if not value.isprintable() or not value.isascii():
        return f"{HEADER} must be printable ASCII."
    return None


def redis_key(settings: Settings, endpoint: str, key: str) -> str:
    """Where a key of `endpoint` is kept."""
    return f"{settings.key_prefix}:idempotency:{endpoint}:{key}"


def fingerprint(*parts: bytes | str) -> str:
    """A hash of what a request sent (its body and whatever changes its meaning)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def claim(r: redis.Redis, key: str, print_: str) -> Answer | None:
    """Claim `key` for this request (None), or the answer its first request gave;
    Mismatch or InProgress when it cannot be answered."""
    pending = orjson.dumps({"fingerprint": print_})
    kept = r.set(key, pending, nx=True, ex=CLAIM_TTL, get=True)
    if kept is None:
        return None
    found = orjson.loads(kept)
    if found.get("fingerprint") != print_:
        raise Mismatch()
    if "status" not in found:
        raise InProgress()
    return Answer(found["status"], found["body"].encode())


def remember(pipe: redis.client.Pipeline, key: str, print_: str, answer: Answer) -> None:
    """Queue keeping `answer` under `key` for TTL on `pipe` (the caller executes it)."""
    kept = {"fingerprint": print_, "status": answer.status, "body": answer.body.decode()}
    pipe.set(key, orjson.dumps(kept), ex=TTL)


def release(r: redis.Redis, key: str) -> None:
    """Give up a claim whose request failed, so a retry can store it."""
    r.delete(key)
