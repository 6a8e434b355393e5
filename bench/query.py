"""Query benchmark at scale: realistic logs loaded with COPY, the API's hot queries timed
(p50/p95), and the drain's ingest rate into the same table before and after the query
indexes of migration 0002.

    python -m bench.query                      10M rows over 14 days into a throwaway database
    python -m bench.query --rows 1000000       smaller, for a quick look
    python -m bench.query --keep sluice_bench  keep the database afterwards (and reuse it
                                               next time with --reuse sluice_bench)

Targets (issue 4): filtered page (level + source + 1 h window) p95 < 50 ms; full-text over
24 h p95 < 300 ms. Issue 11: `/logs/stats` over 24 h at 5 m buckets p95 < 50 ms with and
without the top lists (the rollup of migration 0003), reported against the filtered page
timed in the same run; the same stats scanning `logs` (a `contains` filter the rollup
does not count) are timed too, as the cost the rollup saves. The data: 20 sources and 10
applications with Zipf-like weights, levels Zipf-like (INFO ~66 % ... CRITICAL ~2 %),
messages from templates with ids, durations and addresses (~110 bytes), metadata with a
request UUID, a user id and a nested http object. Nothing generated is written to disk.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import orjson
import psycopg2
import psycopg2.errors

SEED = 20261128
SERVER = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LEVELS = ("INFO", "DEBUG", "WARN", "ERROR", "TRACE", "CRITICAL")
# Zipf-like, s = 2: INFO 66 %, DEBUG 16 %, WARN 7 %, ERROR 4 %, TRACE 3 %, CRITICAL 2 %.
LEVEL_WEIGHTS = tuple(1 / (rank + 1) ** 2 for rank in range(len(LEVELS)))
SOURCES = tuple(
    [f"web-{n:02d}" for n in range(1, 9)]
    + [f"worker-{n:02d}" for n in range(1, 7)]
    + ["db-primary", "db-replica", "lb-1", "lb-2", "cron-1", "edge-eu-1"]
)
APPLICATIONS = (
    "api",
    "web",
    "auth",
    "billing",
    "worker",
    "scheduler",
    "search",
    "notifications",
    "payments",
    "gateway",
)
# Zipf-like (s = 1) popularity for sources and applications.
SOURCE_WEIGHTS = tuple(1 / (rank + 1) for rank in range(len(SOURCES)))
APPLICATION_WEIGHTS = tuple(1 / (rank + 1) for rank in range(len(APPLICATIONS)))

PATHS = ("/api/v1/users", "/api/v1/orders", "/api/v1/search", "/login", "/health", "/cart")
ROUTINE = (
    "GET {path}/{n} 200 in {ms}ms",
    "POST {path} 201 in {ms}ms user={user}",
    "user {user} logged in from 10.{a}.{b}.{c}",
    "cache miss for key session:{hex} refreshing from origin",
    "job {hex} completed in {ms}ms queue=default",
    "email sent to user {user} template=welcome locale=en",
    "search query returned {n} results in {ms}ms",
    "scheduled task cleanup_sessions finished removed={n}",
    "request {uuid} handled by {path} status=200 bytes={n}",
    "opened connection to db-primary pool size {a} of 20",
)
WARNINGS = (
    "slow query on orders took {ms}ms rows={n}",
    "retrying request to payments-api attempt {a} of 5",
    "rate limit nearly reached for api key {hex} ({a}% used)",
    "disk usage on /var at {a}% on {path}",
    "deprecated endpoint {path} called by client {hex}",
)
FAILURES = (
    "connection to db-primary timed out after {a}s",
    "payment {hex} declined: insufficient funds for user {user}",
    "login failed for user {user}: invalid password from 10.{a}.{b}.{c}",
    "TLS handshake failed with 10.{a}.{b}.{c}: certificate expired",
    "unhandled exception in {path}: KeyError 'customer_id' request {uuid}",
    "out of memory: killed process {n} (java) rss={ms}MB",
    "upstream gateway returned 502 bad gateway for {path}",
)
TEMPLATES = {
    "TRACE": ROUTINE,
    "DEBUG": ROUTINE,
    "INFO": ROUTINE,
    "WARN": WARNINGS,
    "ERROR": FAILURES,
    "CRITICAL": FAILURES,
}
HTTP_STATUS = {"TRACE": 200, "DEBUG": 200, "INFO": 200, "WARN": 429, "ERROR": 500, "CRITICAL": 503}

# Full-text queries the benchmark times, from a word in most messages to none at all.
SEARCHES = (
    "timed out",
    '"certificate expired"',
    "declined",
    "payment declined",
    '"bad gateway"',
    "KeyError",
    "slow query",
    "deprecated",
    "welcome",
    "zebra",
    "cleanup_sessions",
    '"invalid password"',
)


def _uuid(bits: int) -> str:
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


class LogMaker:
    """Realistic log rows from a seeded generator (the same seed gives the same logs).

    Messages come from a pool rendered once (POOL per level group) so generating 10M rows
    costs a few microseconds each; metadata is fresh per row (a unique request id).
    """

    POOL = 50_000

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.pools = {
            templates: [self._fill(self.rng.choice(templates)) for _ in range(self.POOL)]
            for templates in dict.fromkeys(TEMPLATES.values())
        }

    def _fill(self, template: str) -> str:
        rng = self.rng
        return template.format(
            path=rng.choice(PATHS),
            n=rng.randint(1, 99_999),
            ms=rng.randint(1, 9_000),
            user=rng.randint(1, 100_000),
            hex=f"{rng.getrandbits(32):08x}",
            uuid=_uuid(rng.getrandbits(128)),
            a=rng.randint(1, 99),
            b=rng.randint(0, 255),
            c=rng.randint(1, 254),
        )

    def batch(self, count: int) -> list[tuple[str, str, str, str, str]]:
        """`count` (level, source, application, message, metadata JSON) tuples."""
        rng = self.rng
        rand, bits = rng.random, rng.getrandbits
        levels = rng.choices(LEVELS, LEVEL_WEIGHTS, k=count)
        sources = rng.choices(SOURCES, SOURCE_WEIGHTS, k=count)
        applications = rng.choices(APPLICATIONS, APPLICATION_WEIGHTS, k=count)
        pools = {level: self.pools[TEMPLATES[level]] for level in LEVELS}
        size = self.POOL
        out = []
        for level, source, application in zip(levels, sources, applications, strict=True):
            metadata = (
                f'{{"request_id":"{_uuid(bits(128))}","user_id":{int(rand() * 100_000) + 1},'
                f'"http":{{"method":"{"POST" if rand() < 0.3 else "GET"}",'
                f'"status":{HTTP_STATUS[level]}}}}}'
            )
            message = pools[level][int(rand() * size)]
            out.append((level, source, application, message, metadata))
        return out

    def rows(self, count: int, start: datetime, end: datetime) -> list[dict]:
        """`count` rows as `app.pipeline.store.insert_logs` takes them, spread over [start, end)."""
        step = (end - start) / count
        stamp = int(start.timestamp() * 1000)
        return [
            {
                "timestamp": start + step * (i + self.rng.random()),
                "level": level,
                "source": source,
                "application": application,
                "message": message,
                "metadata": orjson.loads(metadata),
                "stream_id": f"{stamp}-{i}-{self.rng.getrandbits(20)}",
            }
            for i, (level, source, application, message, metadata) in enumerate(self.batch(count))
        ]


COPY_COLUMNS = "timestamp, level, source, application, message, metadata, stream_id, created_at"


class CopySource(io.RawIOBase):
    """A file-like object psycopg2's copy_expert reads: COPY text lines generated on demand,
    `count` rows in time order over [start, end), so nothing is materialised."""

    def __init__(self, maker: LogMaker, count: int, start: datetime, end: datetime) -> None:
        self.maker, self.count = maker, count
        self.start_us = int(start.timestamp() * 1_000_000)
        self.step_us = (end - start) / timedelta(microseconds=1) / count
        self.done = 0
        self._second, self._prefix = None, ""

    def readable(self) -> bool:
        return True

    def _stamp(self, micros: int) -> str:
        second, fraction = divmod(micros, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self._prefix}.{fraction:06d}+00"

    def read(self, size: int = -1) -> bytes:
        """The next few thousand lines (copy_expert accepts more than `size`)."""
        n = min(5000, self.count - self.done)
        if n <= 0:
            return b""
        rand, stamp = self.maker.rng.random, self._stamp
        lines = []
        for level, source, application, message, metadata in self.maker.batch(n):
            micros = self.start_us + int(self.step_us * (self.done + rand()))
            lines.append(
                f"{stamp(micros)}\t{level}\t{source}\t{application}\t{message}\t{metadata}\t"
                f"{micros // 1000}-{self.done}\t{stamp(micros + 300_000)}\n"
            )
            self.done += 1
        return "".join(lines).encode()


# ---------------------------------------------------------------- throwaway databases


def server_dsn(name: str | None = None) -> str:
    """The benchmark server's DSN, for database `name` (the server's own by default)."""
    parts = urlsplit(SERVER)
    return parts._replace(path=f"/{name}").geturl() if name else SERVER


def sqlalchemy_url(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the benchmark server."""
    return server_dsn(name).replace("postgresql://", "postgresql+psycopg2://", 1)


def admin(sql: str) -> None:
    """Run one statement on the server outside a transaction (CREATE/DROP DATABASE)."""
    conn = psycopg2.connect(server_dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def database_exists(name: str) -> bool:
    """Is there a database called `name`?"""
    conn = psycopg2.connect(server_dsn())
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        found = cur.fetchone() is not None
    conn.close()
    return found


def create_rollup_tables(name: str) -> None:
    """The rollup tables (migrations 0003 and 0005) in a database at an earlier revision,
    the mark past every loaded row, so the drain's write path and its catch-ups run
    there; 0003 recounts them."""
    from sqlalchemy import create_engine, text

    from app.pipeline import rollup

    eng = create_engine(sqlalchemy_url(name))
    rollup.metadata.create_all(eng)
    with eng.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO logs_rollup_mark (last_id) SELECT coalesce(max(id), 0) FROM logs "
                "ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id"
            )
        )
        conn.commit()
    eng.dispose()


def migrate(name: str, revision: str) -> None:
    """Bring database `name` to an alembic `revision`."""
    from alembic import command
    from alembic.config import Config

    config = Config(os.path.join(ROOT, "alembic.ini"))
    config.set_main_option("script_location", os.path.join(ROOT, "migrations"))
    config.attributes["url"] = sqlalchemy_url(name)
    command.upgrade(config, revision)


def secondary_definitions(cur) -> tuple[list[str], list[str]]:
    """(constraint DDL, index DDL) for everything indexing the `logs` parent."""
    cur.execute(
        "SELECT format('ALTER TABLE logs ADD CONSTRAINT %I %s', conname, "
        "pg_get_constraintdef(oid)) FROM pg_constraint "
        "WHERE conrelid = 'logs'::regclass AND contype IN ('p', 'u')"
    )
    constraints = [row[0] for row in cur.fetchall()]
    cur.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid "
        "WHERE i.indrelid = 'logs'::regclass AND c.oid IS NULL"
    )
    return constraints, [row[0] for row in cur.fetchall()]


_maker: LogMaker | None = None


def _copy_chunk(job: tuple[str, int, int, datetime, datetime]) -> int:
    """One loader job: COPY `count` rows over [lo, hi) (rng seeded by the job number, so
    the data does not depend on how many processes load it)."""
    global _maker
    name, number, count, lo, hi = job
    if _maker is None:
        _maker = LogMaker()
    _maker.rng.seed(SEED + number)
    conn = psycopg2.connect(server_dsn(name))
    with conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY logs ({COPY_COLUMNS}) FROM STDIN", CopySource(_maker, count, lo, hi))
    conn.close()
    return count


def load(name: str, rows: int, start: datetime, end: datetime, processes: int = 2) -> float:
    """COPY `rows` logs over [start, end) into database `name` (at revision 0001) with its
    keys and indexes dropped, then rebuild them; return the seconds it took."""
    began = time.perf_counter()
    conn = psycopg2.connect(server_dsn(name))
    conn.autocommit = True
    cur = conn.cursor()
    day = start.date()
    while day <= end.date():
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS logs_p{day:%Y%m%d} PARTITION OF logs FOR VALUES "
            f"FROM ('{day.isoformat()} 00:00+00') TO ('{(day + timedelta(days=1))} 00:00+00')"
        )
        day += timedelta(days=1)
    constraints, indexes = secondary_definitions(cur)
    cur.execute("ALTER TABLE logs DROP CONSTRAINT IF EXISTS logs_pkey")
    cur.execute("DROP INDEX IF EXISTS logs_stream_id_key, logs_timestamp_id_idx")
    per_job = 500_000
    jobs = [
        (name, n, min(per_job, rows - first), *_span(start, end, rows, first, per_job))
        for n, first in enumerate(range(0, rows, per_job))
    ]
    loaded = 0
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        for count in pool.imap(_copy_chunk, jobs):
            loaded += count
            print(f"  loaded {loaded:,} rows ({time.perf_counter() - began:.0f} s)", flush=True)
    cur.execute("SET maintenance_work_mem = '512MB'")
    for ddl in constraints + indexes:
        cur.execute(ddl.replace(" ON ONLY ", " ON "))
    print(f"  rebuilt 0001 keys and indexes ({time.perf_counter() - began:.0f} s)", flush=True)
    conn.close()
    settle(name)
    return time.perf_counter() - began


def _span(start: datetime, end: datetime, rows: int, first: int, count: int):
    count = min(count, rows - first)
    return start + (end - start) * first / rows, start + (end - start) * (first + count) / rows


def settle(name: str) -> None:
    """VACUUM ANALYZE `logs` (visibility map and statistics, as autovacuum would), then a
    CHECKPOINT, so a measurement does not pay for the writes of the step before it."""
    conn = psycopg2.connect(server_dsn(name))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE logs")
        cur.execute("SELECT to_regclass('logs_rollup') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("VACUUM ANALYZE logs_rollup, logs_rollup_hourly, logs_rollup_levels")
        # Not a superuser: no checkpoint, the measurement is only noisier.
        with contextlib.suppress(psycopg2.errors.InsufficientPrivilege):
            cur.execute("CHECKPOINT")
    conn.close()


# ---------------------------------------------------------------- measurements


@dataclass(frozen=True)
class Ingest:
    """One ingest measurement: wall-clock rows/s, and the PostgreSQL backend's CPU time
    per row (robust to a busy machine: others' work slows the clock, not this CPU)."""

    rows_per_s: float
    backend_us_per_row: float | None

    def __str__(self) -> str:
        text = f"{self.rows_per_s:,.0f} rows/s"
        if self.backend_us_per_row:
            text += f", backend CPU {self.backend_us_per_row:.0f} us/row"
        return text


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of local process `pid` (None if it is not local)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest_rate(
    url: str, rows: int, at: datetime, seed: int, chunk: int = 100, count: bool = True
) -> Ingest:
    """Ingest through the drain's write path (`insert_logs` in `write_in_commit_order`,
    one transaction per `chunk` rows) into `logs`, timestamps in the half hour before `at`;
    with `count`, the rollup's catch-up every COUNT_EVERY seconds and at the end, as the
    drain runs it (timed: part of the cost)."""
    from sqlalchemy import text

    from app.pipeline import rollup, store
    from app.pipeline.connections import engine
    from tasks.drain import COUNT_EVERY

    data = LogMaker(seed).rows(rows, at - timedelta(minutes=30), at)
    with engine(url).connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        conn.commit()
        cpu_before, began = _cpu_seconds(pid), time.perf_counter()
        count_at = began + COUNT_EVERY
        for i in range(0, rows, chunk):
            store.write_in_commit_order(conn, data[i : i + chunk], lambda stored: None)
            if count and time.perf_counter() >= count_at:
                rollup.catch_up(conn)
                conn.commit()
                count_at = time.perf_counter() + COUNT_EVERY
        if count:
            catch_up_all(conn)
        elapsed, cpu_after = time.perf_counter() - began, _cpu_seconds(pid)
        if not count:  # untimed: so the next run does not count these
            catch_up_all(conn)
    cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before)
    return Ingest(rows / elapsed, None if cpu is None else cpu / rows * 1e6)


def catch_up_all(conn) -> None:
    """Catch up until every stored log is counted."""
    from app.pipeline import rollup

    while rollup.catch_up(conn):
        conn.commit()
    conn.commit()


def rollup_cost(url: str, rows: int, at: datetime, rounds: int = 3) -> None:
    """Ingest with and without the rollup's catch-ups (counted afterwards, untimed, for
    the second), interleaved in `rounds`: what the exact stats cost the drain."""
    measured: dict[str, list[Ingest]] = {"with": [], "without": []}
    for n in range(rounds):
        for name in ("with", "without"):
            stamp = at + timedelta(hours=2 * n + 1 + (name == "with"))
            measured[name].append(
                ingest_rate(url, rows, stamp, seed=10 + 2 * n, count=name == "with")
            )
    cpu = {
        name: statistics.median(i.backend_us_per_row or 0 for i in runs)
        for name, runs in measured.items()
    }
    rate = {name: statistics.median(i.rows_per_s for i in runs) for name, runs in measured.items()}
    print(
        f"rollup cost, median of {rounds} interleaved rounds of {rows:,} rows: "
        f"{rate['with']:,.0f} rows/s and {cpu['with']:.0f} us/row backend CPU with it, "
        f"{rate['without']:,.0f} rows/s and {cpu['without']:.0f} us/row without "
        f"({rate['with'] / rate['without']:.2f}x the rows/s)"
    )


def check_rollup(name: str) -> None:
    """Print whether every grain of the rollup counts exactly the stored logs."""
    from app.pipeline.rollup import COUNTS

    total = "sum(" + " + ".join(COUNTS) + ")::bigint"
    with psycopg2.connect(server_dsn(name)) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT (SELECT count(*) FROM logs), (SELECT {total} FROM logs_rollup), "
            f"(SELECT {total} FROM logs_rollup_hourly), (SELECT {total} FROM logs_rollup_levels)"
        )
        rows, *grains = cur.fetchone()
    verdict = "exact" if all(g == rows for g in grains) else "MISMATCH"
    print(f"rollup: {rows:,} logs; counted per minute, hour, level: {grains} ({verdict})")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) of `samples`, in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def iso(moment: datetime) -> str:
    """A query-string timestamp."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def query_cases(start: datetime, end: datetime, reps: int, seed: int) -> dict[str, list[str]]:
    """The URLs each timed query runs, `reps` of each, with varied parameters."""
    rng = random.Random(seed)
    hours = int((end - start) / timedelta(hours=1)) - 1

    def hour() -> tuple[datetime, datetime]:
        lo = start + timedelta(hours=rng.randint(0, hours - 1), minutes=rng.randint(0, 59))
        return lo, lo + timedelta(hours=1)

    def day() -> tuple[datetime, datetime]:
        hi = end - timedelta(hours=rng.randint(0, int(hours / 2)))
        return hi - timedelta(hours=24), hi

    cases: dict[str, list[str]] = {name: [] for name in CASE_NAMES}
    for i in range(reps):
        lo, hi = hour()
        cases["filtered page: level + source + 1 h"].append(
            "/logs?"
            + urlencode(
                {
                    "level": LEVELS[i % len(LEVELS)],
                    "source": rng.choice(SOURCES),
                    "since": iso(lo),
                    "until": iso(hi),
                }
            )
        )
        lo, hi = day()
        cases["full-text q over 24 h"].append(
            "/logs?"
            + urlencode({"q": SEARCHES[i % len(SEARCHES)], "since": iso(lo), "until": iso(hi)})
        )
        lo, hi = day()
        window = {"interval": "5m", "since": iso(lo), "until": iso(hi)}
        cases["histogram: 24 h at 5 m (stats, top=0)"].append(
            "/logs/stats?" + urlencode({**window, "top": 0})
        )
        lo, hi = day()
        window = {"interval": "5m", "since": iso(lo), "until": iso(hi)}
        cases["stats with top lists: 24 h at 5 m"].append("/logs/stats?" + urlencode(window))
        # Every message has a space: the same logs, counted by scanning them.
        cases["stats scanning logs (contains): 24 h"].append(
            "/logs/stats?" + urlencode({**window, "contains": " "})
        )
        cases["newest page, no filter"].append("/logs?limit=100")
        cases["meta.user_id over 24 h"].append(
            "/logs?"
            + urlencode({"meta.user_id": rng.randint(1, 10**5), "since": iso(lo), "until": iso(hi)})
        )
    return cases


CASE_NAMES = (
    "filtered page: level + source + 1 h",
    "full-text q over 24 h",
    "histogram: 24 h at 5 m (stats, top=0)",
    "stats with top lists: 24 h at 5 m",
    "stats scanning logs (contains): 24 h",
    "newest page, no filter",
    "meta.user_id over 24 h",
)
TARGETS_MS = {
    "filtered page: level + source + 1 h": 50,
    "full-text q over 24 h": 300,
    "histogram: 24 h at 5 m (stats, top=0)": 50,
    "stats with top lists: 24 h at 5 m": 50,
}
REFERENCE = "filtered page: level + source + 1 h"


def time_queries(url: str, cases: dict[str, list[str]]) -> dict[str, tuple[float, float, int]]:
    """Run each URL through the app (test client: routing, validation, SQL, JSON) and
    return (p50 ms, p95 ms, rows seen in total) per case; the next page is followed once
    for the filtered page, as a user scrolling would."""
    from app import create_app
    from config import Settings

    client = create_app(Settings(database_url=url, log_level="WARNING")).test_client()
    out = {}
    for name, urls in cases.items():
        client.get(urls[0])  # warm the plan cache and connection pool, untimed
        samples, seen = [], 0
        for target in urls:
            began = time.perf_counter()
            response = client.get(target)
            samples.append(time.perf_counter() - began)
            assert response.status_code == 200, (target, response.json)
            body = response.json
            seen += len(body.get("logs", ())) or body.get("total", 0)
        out[name] = (*percentiles(samples), seen)
    return out


def report(results: dict[str, tuple[float, float, int]]) -> None:
    """Print one line per query case."""
    for name, (p50, p95, seen) in results.items():
        target = TARGETS_MS.get(name)
        verdict = ""
        if target is not None:
            verdict = ("  OK" if p95 < target else "  MISSED") + f" (target p95 < {target} ms)"
        print(f"  {name:<40} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  rows {seen:>9,}{verdict}")
    reference = results[REFERENCE][1]
    print(f"  against the filtered page's p95 in this run ({reference:.1f} ms):")
    for name in CASE_NAMES[2:5]:
        p95 = results[name][1]
        print(f"    {name:<38} p95 {p95:7.1f} ms = {p95 / reference:5.2f}x the reference")


def main(argv: list[str] | None = None) -> None:
    """Create (or reuse) the database, load, measure ingest and queries, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--reps", type=int, default=24, help="runs of each query")
    parser.add_argument("--ingest-rows", type=int, default=100_000)
    parser.add_argument("--keep", metavar="NAME", help="keep the database under this name")
    parser.add_argument("--reuse", metavar="NAME", help="skip loading: use this database")
    args = parser.parse_args(argv)

    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=args.days)
    name = args.reuse or args.keep or f"sluice_bench_{uuid.uuid4().hex[:8]}"
    url = sqlalchemy_url(name)
    try:
        if not args.reuse:
            admin(f'CREATE DATABASE "{name}"')
            migrate(name, "0001")
            print(f"loading {args.rows:,} rows over {args.days} days into {name}")
            seconds = load(name, args.rows, start, end)
            print(f"loaded in {seconds:.0f} s ({args.rows / seconds:,.0f} rows/s incl. indexes)")
            settle(name)
            create_rollup_tables(name)
            before = ingest_rate(url, args.ingest_rows, end, seed=1)
            print(f"ingest, 0001 indexes only: {before} (drain path, 100 rows/commit)")
            began = time.perf_counter()
            migrate(name, "head")
            print(
                "migrations 0002 (indexes), 0003 (rollup, counting every log) and later on the "
                f"loaded table: {time.perf_counter() - began:.0f} s"
            )
            settle(name)
            after = ingest_rate(url, args.ingest_rows, end, seed=2)
            ratio = after.rows_per_s / before.rows_per_s
            print(f"ingest, with 0002 indexes: {after} ({ratio:.2f}x the rows/s)")
            check_rollup(name)
            settle(name)
        else:
            migrate(name, "head")
            with psycopg2.connect(server_dsn(name)) as conn, conn.cursor() as cur:
                cur.execute("SELECT min(timestamp), max(timestamp) FROM logs")
                start, end = cur.fetchone()
        print(f"queries ({args.reps} runs each, varied parameters):")
        report(time_queries(url, query_cases(start, end, args.reps, seed=3)))
        if not args.reuse:
            # Last: its rows (timestamps after `end`) are not in the queries' windows.
            rollup_cost(url, max(1000, args.ingest_rows // 5), end)
    finally:
        from app.pipeline.connections import engine

        engine(url).dispose()
        if not (args.keep or args.reuse):
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
