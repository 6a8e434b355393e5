"""The drain's write path: candidate INSERTs, and how writers in parallel are ordered.

    python -m bench.writepath [--rows 20000] [--rounds 2] [--writers 1,2]

Same rows (realistic logs), same schema (every migration), 100 rows per transaction, in a
throwaway database; each figure is reported against a plain COPY into `logs` measured in
the same run (no conflict handling, no RETURNING: the floor of what PostgreSQL can take).

1. Write paths, one writer, rounds interleaved so machine noise spreads evenly:
   `values` execute_values INSERT ... ON CONFLICT DO NOTHING RETURNING (the old path);
   `copy_temp` COPY into a temporary table, then INSERT ... SELECT ... ON CONFLICT ...
   RETURNING; `json` INSERT ... SELECT FROM json_to_recordset(one JSON parameter) ...
   (`app.pipeline.store.insert_logs`); `copy` the reference.
2. Ordering of N writer processes, each inserting and publishing (real Redis PUBLISH):
   `global_lock` one advisory lock from INSERT to after PUBLISH (the old design);
   `ordered` ids reserved per block, INSERTs in parallel, commit and publish in block
   order (`store.write_in_commit_order`); `unordered` no ordering at all (the ceiling,
   not gap-free). Meanwhile `BackendStates` samples what the writers' backends do
   (running, waiting on an advisory lock, waiting on something else, idle), printed
   per mode and writer count after the rates.

    python -m bench.writepath --drain 20000

instead drains a backlog of that many logs with `tasks.drain.drain_stream` in this one
process (what `py-spy record -- python -m bench.writepath --drain N` profiles, for
docs/perf/drain-*.svg).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import orjson
import psycopg2
from psycopg2.extras import Json, execute_values

from bench.common import realistic_log, throwaway_database

COLUMNS = "timestamp, level, source, application, message, metadata, stream_id"
RETURNING = "id, timestamp, level, source, application, message, metadata, stream_id, created_at"
PER_TX = 100
WRITER_NAME = "sluice-bench-writer"  # application_name of the parallel writers
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


def make_rows(n: int, seed: int) -> list[dict]:
    """`n` rows as the drain hands them to the store, with unique stream ids."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    rows = []
    for i in range(n):
        log = realistic_log(rng, now)
        log["timestamp"] = now
        log["stream_id"] = f"{seed}{tag}-{i}"
        rows.append(log)
    return rows


def _copy_text(chunk: list[dict]) -> io.StringIO:
    buf = io.StringIO()
    for r in chunk:
        fields = (
            r["timestamp"].isoformat(),
            r["level"],
            r["source"],
            r["application"],
            r["message"].translate(_ESCAPE),
            orjson.dumps(r["metadata"]).decode().translate(_ESCAPE),
            r["stream_id"],
        )
        buf.write("\t".join(fields))
        buf.write("\n")
    buf.seek(0)
    return buf


def copy_plain(cur, chunk):
    cur.copy_expert(f"COPY logs ({COLUMNS}) FROM STDIN", _copy_text(chunk))


def values_insert(cur, chunk):
    rows = [
        (
            r["timestamp"],
            r["level"],
            r["source"],
            r["application"],
            r["message"],
            Json(r["metadata"]),
            r["stream_id"],
        )
        for r in chunk
    ]
    sql = (
        f"INSERT INTO logs ({COLUMNS}) VALUES %s "
        f"ON CONFLICT (stream_id, timestamp) DO NOTHING RETURNING {RETURNING}"
    )
    execute_values(cur, sql, rows, page_size=len(rows), fetch=True)


def copy_temp(cur, chunk):
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS logs_in (timestamp timestamptz, level text, "
        "source text, application text, message text, metadata jsonb, stream_id text) "
        "ON COMMIT DELETE ROWS"
    )
    cur.copy_expert(f"COPY logs_in ({COLUMNS}) FROM STDIN", _copy_text(chunk))
    cur.execute(
        f"INSERT INTO logs ({COLUMNS}) SELECT {COLUMNS} FROM logs_in "
        f"ON CONFLICT (stream_id, timestamp) DO NOTHING RETURNING {RETURNING}"
    )
    cur.fetchall()


def json_store(conn, chunk):
    from app.pipeline import store

    store.insert_logs(conn, chunk)


CANDIDATES = {"copy": copy_plain, "values": values_insert, "copy_temp": copy_temp}


def _backend_cpu(pid: int) -> float:
    """User + system CPU seconds of the (local) backend `pid`."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(pid: int, work) -> tuple[float, float]:
    """(wall seconds, client + backend CPU seconds) of `work()`."""
    cpu, backend, wall = time.process_time(), _backend_cpu(pid), time.perf_counter()
    work()
    wall = time.perf_counter() - wall
    return wall, time.process_time() - cpu + _backend_cpu(pid) - backend


def run_raw(url: str, fn, rows: list[dict]) -> tuple[float, float]:
    """(rows/s, CPU us/row) of `fn(cursor, chunk)` plus a commit per PER_TX rows."""
    conn = psycopg2.connect(_dsn(url))
    cur = conn.cursor()
    cur.execute("SET client_min_messages = warning; SELECT pg_backend_pid()")
    (pid,) = cur.fetchone()
    conn.commit()

    def work():
        for i in range(0, len(rows), PER_TX):
            fn(cur, rows[i : i + PER_TX])
            conn.commit()

    wall, cpu = _timed(pid, work)
    conn.close()
    return len(rows) / wall, cpu / len(rows) * 1e6


def run_store(url: str, rows: list[dict]) -> tuple[float, float]:
    """(rows/s, CPU us/row) of `store.insert_logs` through SQLAlchemy, a commit per
    PER_TX rows."""
    from sqlalchemy import text

    from app.pipeline.connections import engine

    with engine(url).connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        conn.commit()

        def work():
            for i in range(0, len(rows), PER_TX):
                json_store(conn, rows[i : i + PER_TX])
                conn.commit()

        wall, cpu = _timed(pid, work)
    return len(rows) / wall, cpu / len(rows) * 1e6


def write_paths(url: str, n: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(rows/s, CPU us/row) per candidate, `rounds` interleaved rounds of `n` rows each."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in (*CANDIDATES, "json")}
    seed = 0
    for _ in range(rounds):
        for name in results:
            seed += 1
            rows = make_rows(n, seed)
            if name == "json":
                results[name].append(run_store(url, rows))
            else:
                results[name].append(run_raw(url, CANDIDATES[name], rows))
    return results


# --- ordering of parallel writers -------------------------------------------------------


def _writer(url: str, redis_url: str, channel: str, mode: str, n: int, seed: int, start, out):
    from sqlalchemy import text

    from app.pipeline import fanout, store
    from app.pipeline.connections import engine, redis_client
    from config import Settings

    settings = Settings(database_url=url, redis_url=redis_url, pubsub_channel=channel)
    r = redis_client(redis_url)
    rows = make_rows(n, seed)

    def publish(stored):
        fanout.publish_stored(r, settings, stored)

    with engine(url).connect() as conn:
        # Named, so that `BackendStates` samples these backends and nothing else.
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": WRITER_NAME})
        conn.commit()
        start.wait()
        began = time.perf_counter()
        for i in range(0, n, PER_TX):
            chunk = rows[i : i + PER_TX]
            if mode == "ordered":
                store.write_in_commit_order(conn, chunk, publish)
            elif mode == "global_lock":
                conn.execute(text("SELECT pg_advisory_lock(5117100)"))
                stored = store.insert_logs(conn, chunk)
                conn.commit()
                publish(stored)
                conn.execute(text("SELECT pg_advisory_unlock(5117100)"))
                conn.commit()
            else:
                stored = store.insert_logs(conn, chunk)
                conn.commit()
                publish(stored)
        out.put(time.perf_counter() - began)


def shares(counts: dict[str, int]) -> str:
    """Each kind's share of `counts` (`BackendStates.counts`, or several summed), as text."""
    total = sum(counts.values()) or 1
    return ", ".join(f"{kind} {n / total:.0%}" for kind, n in counts.items())


class BackendStates:
    """Samples what the writers' PostgreSQL backends are doing, every `interval` seconds,
    from `pg_stat_activity` (an outside view: nothing in the writers is instrumented):
    running a statement, waiting on an advisory lock (a writer's turn in the commit or
    publish order), waiting on anything else, or idle (the client's own work)."""

    KINDS = ("running", "advisory wait", "other wait", "idle")

    def __init__(self, url: str, interval: float = 0.02) -> None:
        self.url, self.interval = url, interval
        self.counts = dict.fromkeys(self.KINDS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackendStates:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = psycopg2.connect(_dsn(self.url))
        conn.autocommit = True
        cur = conn.cursor()
        while not self._stop.wait(self.interval):
            cur.execute(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' "
                "AND pid <> pg_backend_pid() AND application_name = %s",
                (WRITER_NAME,),
            )
            for state, wait_type, wait in cur.fetchall():
                if state != "active":
                    self.counts["idle"] += 1
                elif wait_type == "Lock" and wait == "advisory":
                    self.counts["advisory wait"] += 1
                elif wait_type is not None:  # a WAL flush, a buffer lock, ...
                    self.counts["other wait"] += 1
                else:
                    self.counts["running"] += 1
        conn.close()


def parallel(url: str, redis_url: str, mode: str, writers: int, n: int, seed: int):
    """Rows/s of `writers` processes inserting `n` rows each under `mode`, and what their
    backends were doing meanwhile (`BackendStates`)."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(writers + 1), ctx.Queue()
    channel = f"bench-writepath:{uuid.uuid4().hex[:8]}"
    procs = [
        ctx.Process(target=_writer, args=(url, redis_url, channel, mode, n, seed + i, start, out))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    start.wait()
    with BackendStates(url) as states:
        began = time.perf_counter()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - began
    while not out.empty():
        out.get()
    return writers * n / elapsed, states


def drain_in_process(url: str, redis_url: str, n: int) -> float:
    """Logs/s of one in-process `drain_stream` over a backlog of `n` logs."""
    from app.pipeline import intake, stream
    from app.pipeline.connections import redis_client
    from bench.common import isolated_settings
    from tasks.drain import drain_stream

    settings = isolated_settings(url, "bench-writepath", redis_url=redis_url)
    r = redis_client(redis_url)
    stream.ensure_group(r, settings)
    rng = random.Random(5)
    logs = [realistic_log(rng) for _ in range(n)]
    for start in range(0, n, 1000):
        intake.submit(r, settings, logs[start : start + 1000])
    began = time.perf_counter()
    stats = drain_stream(settings, "bench", 600, lambda: stream.lag(r, settings) == 0)
    elapsed = time.perf_counter() - began
    r.delete(settings.stream_name, settings.dead_letter_stream)
    return stats.stored / elapsed


def main() -> None:
    """Run both parts and print each figure with its ratio to the COPY reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per candidate round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--writers", default="1,2")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--skip-paths", action="store_true")
    parser.add_argument("--drain", type=int, default=0, help="only drain a backlog of N")
    args = parser.parse_args()
    with throwaway_database("sluice_bench_writepath") as url:
        if args.drain:
            rate = drain_in_process(url, args.redis_url, args.drain)
            print(f"one drain_stream, backlog of {args.drain:,}: {rate:,.0f} logs/s")
            return
        from config import Settings
        from tasks.maintenance import maintain

        maintain(Settings(database_url=url, redis_url=args.redis_url))
        ref = None
        if not args.skip_paths:
            results = write_paths(url, args.rows, args.rounds)
            ref = statistics.median(x for x, _ in results["copy"])
            ref_cpu = statistics.median(c for _, c in results["copy"])
            print(
                f"reference: plain COPY, {PER_TX} rows/transaction: {ref:,.0f} rows/s, "
                f"{ref_cpu:.0f} us CPU/row (client + backend)"
            )
            for name, runs in results.items():
                rate = statistics.median(x for x, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                spread = ", ".join(f"{x:,.0f}" for x, _ in runs)
                print(
                    f"  {name:10s} {rate:8,.0f} rows/s = {rate / ref:.2f}x ({spread}); "
                    f"CPU {cpu:.0f} us/row = {cpu / ref_cpu:.2f}x"
                )
        seed, counts = 1000, [int(w) for w in args.writers.split(",")]
        rates: dict[tuple[str, int], list[float]] = {}
        states: dict[tuple[str, int], Counter] = {}
        for _ in range(args.rounds):  # interleaved, like the write paths
            for mode in ("global_lock", "ordered", "unordered"):
                for writers in counts:
                    seed += 10
                    rate, seen = parallel(url, args.redis_url, mode, writers, args.rows // 2, seed)
                    rates.setdefault((mode, writers), []).append(rate)
                    states.setdefault((mode, writers), Counter()).update(seen.counts)
        for mode in ("global_lock", "ordered", "unordered"):
            one = statistics.median(rates[(mode, counts[0])])
            line = []
            for writers in counts:
                rate = statistics.median(rates[(mode, writers)])
                line.append(f"{writers}: {rate:,.0f} rows/s ({rate / one:.2f}x)")
            print(f"  {mode:11s} " + "; ".join(line))
        print("what the writers' backends were doing (pg_stat_activity every 20 ms, all rounds):")
        for (mode, writers), summed in states.items():
            print(f"  {mode:11s} {writers}: {shares(summed)}")


if __name__ == "__main__":
    main()
