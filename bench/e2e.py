"""End-to-end benchmark: HTTP -> stream -> drain -> PostgreSQL -> WebSocket.

    python -m bench.e2e [--logs 100000] [--posters 4] [--batch 100] [--workers N]
                        [--drain-writers N]
    python -m bench.e2e --backlog --writers 1,2 [--logs 50000]
    python -m bench.e2e --flower    (Flower too, as `make run` starts it; then what it saw)

Starts the real Procfile processes (gunicorn/gevent web, Celery worker, beat) against a
throwaway database and unique stream names, then measures, in one run:
1. reference: COPY of the same rows into the same schema, 100 rows per transaction;
2. sustained end-to-end rate: logs posted to /data/fast until all are committed, timed
   from after one log has gone all the way through (so the workers' boot is not in it)
   to the drain group having nothing left to read or ack (asked of Redis, so the clock
   puts no load on the database); the bodies are encoded before the clock starts;
3. POST-to-WebSocket latency p50/p99 at a steady, moderate rate.

With `--backlog`, instead of 2 and 3: for each DRAIN_WRITERS value in `--writers`, the
stream is filled with the logs first (nothing drains yet), then a worker with
DRAIN_WRITERS + 1 processes and beat are started, and the drain rate is timed between
10 % and 90 % of the rows committed (so the workers' start-up is not counted).

With `--flower`, Flower runs beside them (its event consumer is part of the default
process set) and, after the run, its API is asked what it saw: the drain tasks by state
and the stored / duplicates / dead counts their results carry, summed.
"""

from __future__ import annotations

import argparse
import ast
import collections
import http.client
import io
import random
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psycopg2
import redis
import requests
import websocket

from app.pipeline import stream
from bench.common import (
    isolated_settings,
    percentile,
    realistic_log,
    throwaway_database,
)
from config import Settings
from tests.stack import Stack


def copy_reference(url: str, logs: list[dict], per_tx: int = 100) -> float:
    """Rows/s of COPY into `logs` (same schema and indexes), `per_tx` rows a transaction."""
    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    cur = conn.cursor()
    columns = "(timestamp, level, source, application, message, metadata, stream_id)"
    started = time.perf_counter()
    for start in range(0, len(logs), per_tx):
        buf = io.StringIO()
        for i, log in enumerate(logs[start : start + per_tx], start):
            fields = [
                log["timestamp"],
                log["level"],
                log["source"],
                log["application"],
                log["message"],
                orjson.dumps(log["metadata"]).decode(),
                f"0-{i}",
            ]
            buf.write("\t".join(f.replace("\\", "\\\\").replace("\t", "\\t") for f in fields))
            buf.write("\n")
        buf.seek(0)
        cur.copy_expert(f"COPY logs {columns} FROM STDIN", buf)
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return len(logs) / elapsed


def stored(url: str) -> int:
    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM logs")
        (n,) = cur.fetchone()
    conn.close()
    return n


def encode_batches(logs: list[dict], batch: int) -> list[bytes]:
    """The request bodies, encoded before any clock starts (the load generator shares
    the two cores with what it measures: it should cost as little as it can)."""
    return [orjson.dumps(logs[i : i + batch]) for i in range(0, len(logs), batch)]


def post_all(port: int, bodies: list[bytes], posters: int) -> None:
    """POST the bodies to /data/fast from `posters` threads, each on one keep-alive
    connection (http.client: a fraction of requests' CPU per call)."""
    headers = {"Content-Type": "application/json"}

    def work(mine):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in mine:
            while True:
                conn.request("POST", "/data/fast", body, headers)
                response = conn.getresponse()
                response.read()
                if response.status == 202:
                    break
                time.sleep(float(response.getheader("Retry-After", "1")))
        conn.close()

    threads = [threading.Thread(target=work, args=(bodies[i::posters],)) for i in range(posters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def drained(r, settings: Settings) -> bool:
    """Every entry in the stream delivered to the drain group and acked (each ack follows
    its row's commit). Asked of Redis: polling `count(*)` would load the database the
    drain is writing to."""
    return (
        stream.lag(r, settings) == 0
        and r.xpending(settings.stream_name, settings.consumer_group)["pending"] == 0
    )


def end_to_end(
    stack: Stack, settings: Settings, url: str, logs: list[dict], batch: int, posters: int
) -> dict:
    """Post everything; time until the last row is committed. One log goes through first,
    so the clock starts on a running system, not on the worker and beat booting."""
    r = redis.Redis.from_url(settings.redis_url)
    bodies = encode_batches(logs[1:], batch)
    post_all(stack.port, encode_batches(logs[:1], 1), 1)
    while stored(url) < 1:
        time.sleep(0.05)
    started = time.perf_counter()
    post_all(stack.port, bodies, posters)
    posted = time.perf_counter() - started
    while not drained(r, settings):
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    count = stored(url)
    if count != len(logs):
        raise SystemExit(f"{count:,} logs stored of {len(logs):,} posted")
    return {
        "logs": len(logs) - 1,
        "post_s": posted,
        "total_s": elapsed,
        "rate": (len(logs) - 1) / elapsed,
        "http_rate": (len(logs) - 1) / posted,
    }


def latency(stack: Stack, rate: int, seconds: float, rng: random.Random) -> list[float]:
    """POST-to-WebSocket latency (ms) of logs sent at `rate` logs/s in batches of 10."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{stack.port}/ws/logs", timeout=30)
    assert orjson.loads(ws.recv())["type"] == "filters"  # subscribed: nothing is missed now
    results: list[float] = []
    done = threading.Event()

    def read():
        while not done.is_set():
            try:
                message = orjson.loads(ws.recv())
            except (websocket.WebSocketException, OSError, orjson.JSONDecodeError):
                return
            now = time.time()
            for log in message.get("logs", []):
                sent = log["metadata"].get("sent")
                if sent:
                    results.append((now - sent) * 1000)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    session = requests.Session()
    per_request = 10
    interval = per_request / rate
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    sent = 0
    while time.monotonic() < deadline:
        batch = []
        for _ in range(per_request):
            log = realistic_log(rng)
            log["metadata"]["sent"] = time.time()
            batch.append(log)
        session.post(
            f"{stack.url}/data/fast",
            data=orjson.dumps(batch),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        sent += per_request
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    wait_until = time.monotonic() + 10
    while len(results) < sent and time.monotonic() < wait_until:
        time.sleep(0.05)
    done.set()
    ws.close()
    return results


def drain_backlog(logs: list[dict], writers: int) -> float:
    """Logs/s at which `writers` drain chains store a backlog of `logs` (10-90 %)."""
    from app.pipeline import intake
    from app.pipeline.connections import redis_client

    with throwaway_database() as url, tempfile.TemporaryDirectory() as tmp:
        settings = isolated_settings(
            url, "sluice-bench", drain_interval=0.2, drain_budget=2.0, drain_writers=writers
        )
        r = redis_client(settings.redis_url)
        for start in range(0, len(logs), 1000):
            intake.submit(r, settings, logs[start : start + 1000])
        stack = Stack(settings, Path(tmp), WORKER_CONCURRENCY=str(writers + 1), LOG_LEVEL="WARNING")
        marks: dict[float, float] = {}
        try:
            stack.start("worker", "beat")
            deadline = time.monotonic() + 600
            while len(marks) < 2 and time.monotonic() < deadline:
                n = stored(url)
                for share in (0.1, 0.9):
                    if share not in marks and n >= share * len(logs):
                        marks[share] = time.perf_counter()
                time.sleep(0.02)
        finally:
            stack.stop_all()
            r.delete(settings.stream_name, settings.dead_letter_stream)
    return 0.8 * len(logs) / (marks[0.9] - marks[0.1])


def main_backlog(args, logs: list[dict], copy_rate: float) -> None:
    """Drain the same backlog with each number of writers; print rates and ratios."""
    rates = {}
    for writers in (int(w) for w in args.writers.split(",")):
        rates[writers] = drain_backlog(logs, writers)
        base = rates[min(rates)]
        print(
            f"backlog of {len(logs):,} drained by {writers} writer(s): "
            f"{rates[writers]:,.0f} logs/s = {rates[writers] / copy_rate:.2f}x the COPY "
            f"reference, {rates[writers] / base:.2f}x {min(rates)} writer(s)"
        )


def flower_drains(stack: Stack) -> str:
    """What Flower's API shows of the drain tasks: how many, by state, and their counts."""
    tasks = stack.wait_http("/api/tasks?taskname=sluice.drain", port=stack.flower_port).json()
    states = collections.Counter(t["state"] for t in tasks.values())
    sums: collections.Counter = collections.Counter()
    busy = 0
    for task in tasks.values():
        try:
            result = ast.literal_eval(task.get("result") or "None")
        except (ValueError, SyntaxError):
            continue
        if isinstance(result, dict) and "stored" in result:
            sums.update({k: result.get(k, 0) for k in ("stored", "duplicates", "dead")})
            busy += result["stored"] > 0
    shown = ", ".join(f"{n} {state}" for state, n in states.most_common())
    return (
        f"Flower: {len(tasks)} sluice.drain tasks ({shown}); {busy} with stored > 0; "
        f"their results sum to {sums['stored']:,} stored, {sums['duplicates']:,} duplicates, "
        f"{sums['dead']:,} dead"
    )


def main() -> None:
    """Run the three measurements and print them with the reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, help="WORKER_CONCURRENCY (default: the Procfile's)")
    parser.add_argument("--latency-rate", type=int, default=200)
    parser.add_argument("--latency-seconds", type=float, default=15)
    parser.add_argument(
        "--drain-writers", type=int, default=Settings().drain_writers, help="DRAIN_WRITERS"
    )
    parser.add_argument("--backlog", action="store_true", help="time draining a full stream")
    parser.add_argument("--writers", default="1,2", help="DRAIN_WRITERS values (--backlog)")
    parser.add_argument("--flower", action="store_true", help="run Flower too; report its view")
    args = parser.parse_args()
    rng = random.Random(42)
    logs = [realistic_log(rng) for _ in range(args.logs)]

    with throwaway_database("sluice_bench_ref") as ref_url:
        copy_rate = copy_reference(ref_url, logs)
    print(f"reference COPY (100 rows/transaction): {copy_rate:,.0f} rows/s")
    if args.backlog:
        main_backlog(args, logs, copy_rate)
        return

    with throwaway_database() as url, tempfile.TemporaryDirectory() as tmp:
        settings = isolated_settings(
            url,
            "sluice-bench",
            drain_interval=0.5,
            drain_budget=2.0,
            drain_writers=args.drain_writers,
        )
        workers = {} if args.workers is None else {"WORKER_CONCURRENCY": str(args.workers)}
        stack = Stack(settings, Path(tmp), LOG_LEVEL="WARNING", **workers)
        try:
            stack.start("web", "worker", "beat", *(["flower"] if args.flower else []))
            e2e = end_to_end(stack, settings, url, logs, args.batch, args.posters)
            if args.flower:  # the drain still running reports when its budget ends
                time.sleep(settings.drain_budget + 1)
            seen = flower_drains(stack) if args.flower else None
            lat = latency(stack, args.latency_rate, args.latency_seconds, rng)
        finally:
            stack.stop_all()
    print(
        f"end to end: {e2e['logs']:,} logs in {e2e['total_s']:.1f}s = {e2e['rate']:,.0f} logs/s "
        f"({e2e['rate'] / copy_rate:.2f}x the COPY reference); HTTP accepted them at "
        f"{e2e['http_rate']:,.0f} logs/s"
    )
    print(
        f"POST -> WebSocket latency at {args.latency_rate} logs/s: "
        f"p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms ({len(lat)} logs)"
    )
    if seen:
        print(seen)


if __name__ == "__main__":
    main()
