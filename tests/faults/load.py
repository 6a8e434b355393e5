"""The fault suite's load and its count: clients that retry until acknowledged, and the
tally of what they were told (202) against what PostgreSQL holds.

Every log carries a unique id (`fault-<n>`, in its message and metadata), so the count is
exact: stored is the set of distinct ids found in `logs`, a duplicate is a row beyond the
first for an id, lost is an acknowledged id with no row.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson
import redis
import requests
from sqlalchemy import create_engine, text

from tests.helpers import wait_for

SOURCE = "fault"


@dataclass
class Result:
    """One row of the fault table."""

    scenario: str
    acknowledged: int
    stored: int
    duplicates: int
    dead_letters: int
    lost: int
    notes: str = ""

    COLUMNS = ("scenario", "acknowledged", "stored", "duplicates", "dead letters", "lost", "notes")

    def cells(self) -> list[str]:
        return [
            self.scenario,
            f"{self.acknowledged:,}",
            f"{self.stored:,}",
            f"{self.duplicates:,}",
            f"{self.dead_letters:,}",
            f"{self.lost:,}",
            self.notes,
        ]


def markdown_table(results: list[Result]) -> str:
    """The results as a markdown table, one row per scenario."""
    lines = [
        "| " + " | ".join(Result.COLUMNS) + " |",
        "|" + "|".join(" --- " for _ in Result.COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in results]
    return "\n".join(lines) + "\n"


class Load:
    """`total` logs posted to /data/fast by `clients` threads in batches of `batch`, paced
    at `rate` logs/s. A batch answered anything but 202 (a 503, a reset connection, a
    timeout) is sent again, with the same `Idempotency-Key`, until it is acknowledged or
    `give_up_after` seconds have passed since its first try. Only 202-acknowledged logs
    count as acknowledged."""

    def __init__(
        self,
        url: str,
        total: int,
        rate: float,
        batch: int = 50,
        clients: int = 4,
        give_up_after: float = 120.0,
    ) -> None:
        self.url = url
        self.total = total
        self.rate = rate
        self.batch = batch
        self.clients = clients
        self.give_up_after = give_up_after
        self.run = uuid.uuid4().hex[:8]
        self.acked: set[str] = set()
        self.outcomes: Counter[str] = Counter()  # every answer, by status or error name
        self.given_up: list[int] = []
        self._lock = threading.Lock()
        self.in_flight = 0  # requests sent and not yet answered
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    @property
    def batches(self) -> int:
        return -(-self.total // self.batch)

    def ids(self, b: int) -> list[str]:
        """The unique ids of batch `b`."""
        return [
            f"fault-{n:07d}" for n in range(b * self.batch, min((b + 1) * self.batch, self.total))
        ]

    def start(self) -> Load:
        self._started = time.monotonic()
        for c in range(self.clients):
            thread = threading.Thread(target=self._client, args=(c,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def join(self, timeout: float = 300) -> Load:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "load clients did not finish"
        return self

    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def fraction(self) -> float:
        """How much of the load is acknowledged so far (0..1)."""
        with self._lock:
            return len(self.acked) / self.total

    def wait_fraction(self, f: float, timeout: float = 120) -> None:
        """Block until at least `f` of the load is acknowledged."""
        wait_for(lambda: self.fraction() >= f or self.done(), timeout=timeout, interval=0.02)

    def wait_in_flight(self, timeout: float = 1.0) -> bool:
        """Until some request is on its way (True), or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.in_flight:
                return True
            time.sleep(0.001)
        return False

    def errors(self) -> int:
        """Answers other than 202."""
        with self._lock:
            return sum(n for k, n in self.outcomes.items() if k != "202")

    def _client(self, c: int) -> None:
        session = requests.Session()
        for b in range(c, self.batches, self.clients):
            due = self._started + b * self.batch / self.rate
            time.sleep(max(0.0, due - time.monotonic()))
            session = self._send(session, b)
        session.close()  # an idle keep-alive connection would hold up gunicorn's shutdown

    def _send(self, session: requests.Session, b: int) -> requests.Session:
        ids = self.ids(b)
        body = orjson.dumps(
            [
                {"message": f"{SOURCE} {i}", "source": SOURCE, "metadata": {"fault_id": i}}
                for i in ids
            ]
        )
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"{self.run}-{b}"}
        first = time.monotonic()
        while True:
            with self._lock:
                self.in_flight += 1
            try:
                response = session.post(
                    f"{self.url}/data/fast", data=body, headers=headers, timeout=10
                )
                outcome = str(response.status_code)
            except requests.RequestException as exc:
                response, outcome = None, type(exc).__name__
                session.close()
                session = requests.Session()  # a reset connection: start clean
            with self._lock:
                self.in_flight -= 1
                self.outcomes[outcome] += 1
            if response is not None and response.status_code == 202:
                accepted = response.json()["accepted"]
                assert accepted == len(ids), response.text  # every log here is valid
                with self._lock:
                    self.acked.update(ids)
                return session
            if time.monotonic() - first > self.give_up_after:
                with self._lock:
                    self.given_up.append(b)
                return session
            time.sleep(0.2)

    def summary(self) -> str:
        """The answers clients got, for the notes column."""
        with self._lock:
            parts = [f"{k}: {n:,}" for k, n in sorted(self.outcomes.items())]
        gave_up = f"; gave up on {len(self.given_up)} batches" if self.given_up else ""
        return "answers " + ", ".join(parts) + gave_up


@dataclass
class Tally:
    """What PostgreSQL and the dead-letter stream hold of one load."""

    rows: int
    stored: set[str]
    dead: set[str]
    duplicates: int = field(init=False)

    def __post_init__(self) -> None:
        self.duplicates = self.rows - len(self.stored)


def tally(db_url: str, redis_url: str, dead_letter_stream: str) -> Tally:
    """Count the fault logs stored and dead-lettered, by their unique ids."""
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(
                text("SELECT metadata->>'fault_id' FROM logs WHERE source = :s"), {"s": SOURCE}
            ).scalars()
            ids = list(rows)
    finally:
        eng.dispose()
    r = redis.Redis.from_url(redis_url)
    dead = set()
    for _, fields in r.xrange(dead_letter_stream):
        body = fields.get(b"d")
        if body:
            dead.add(orjson.loads(body).get("metadata", {}).get("fault_id"))
    return Tally(rows=len(ids), stored=set(ids), dead=dead)


def settle(settings, expect: set[str], timeout: float) -> Tally:
    """Wait until every id of `expect` is stored (at most `timeout` s); the tally then."""

    def tally_now() -> Tally:
        return tally(settings.database_url, settings.redis_url, settings.dead_letter_stream)

    with contextlib.suppress(AssertionError):  # the caller reports the tally, then asserts
        wait_for(lambda: expect <= tally_now().stored, timeout=timeout, interval=0.5)
    return tally_now()


def result(scenario: str, load: Load, t: Tally, notes: list[str]) -> Result:
    """The table row for a load and its tally."""
    return Result(
        scenario=scenario,
        acknowledged=len(load.acked),
        stored=len(t.stored),
        duplicates=t.duplicates,
        dead_letters=len(t.dead),
        lost=len(load.acked - t.stored),
        notes="; ".join([*notes, load.summary()]),
    )
