"""Single-log ingest: wrk against `POST /data/fast`, Sluice beside a floor in the same run.

    python -m bench.ingest [--seconds 15] [--connections 32] [--threads 2]

Every target runs under the Procfile's gunicorn settings (gunicorn.conf.py: gevent,
WEB_CONCURRENCY=2) with its own throwaway database and Redis names, and gets the same
wrk load (bench/wrk_post.lua: one ~250-byte JSON log per request):
1. the floor: bench/floor_app.py, Flask and one XADD per request (the reference);
2. Sluice in open mode (no keys), no drain running;
3. the same Sluice with the drain running (Procfile `worker` and `beat`), once the
   backlog of step 2 is stored, so the drain works only on what wrk sends;
4. Sluice with an ingest key (INGEST_RATE_LIMIT=off) and no drain: what the key check
   costs (the limiter is off, or it would refuse beyond its 2000/second default).
Only 202 answers count as accepted; anything else is reported beside. wrk itself runs
on the same machine, so every figure includes its CPU share (the floor's too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from bench.common import isolated_settings, throwaway_database
from config import Settings
from tests.stack import ROOT, Stack

WRK_SCRIPT = ROOT / "bench" / "wrk_post.lua"
FLOOR_COMMAND = "gunicorn 'bench.floor_app:create_app()' --config gunicorn.conf.py"
TARGET_RATIO = 0.8
WARMUP_SECONDS = 2


@dataclass(frozen=True)
class Run:
    """One wrk run: accepted (202) requests per second and latency percentiles."""

    rate: float
    p50_ms: float
    p99_ms: float
    accepted: int
    refused: int
    socket_errors: int

    def __str__(self) -> str:
        text = f"{self.rate:7,.0f} req/s  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms"
        if self.refused or self.socket_errors:
            text += f"  ({self.refused:,} not 202, {self.socket_errors:,} socket errors)"
        return text


def wrk(url: str, seconds: float, connections: int, threads: int, key: str | None = None) -> Run:
    """Run wrk with bench/wrk_post.lua against `url` and read its WRK_JSON line."""
    env = {**os.environ, "SLUICE_BENCH_KEY": key or ""}
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")
    out = done.stdout
    line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no WRK_JSON line:\n{out}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    return Run(
        rate=data["accepted"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        accepted=data["accepted"],
        refused=data["refused"],
        socket_errors=data["socket_errors"],
    )


def measure(stack: Stack, args, key: str | None = None) -> tuple[Run, int]:
    """A warm-up, then the timed run; also return how many logs both had accepted."""
    warm = wrk(stack.url, WARMUP_SECONDS, args.connections, args.threads, key)
    run = wrk(stack.url, args.seconds, args.connections, args.threads, key)
    return run, warm.accepted + run.accepted


def stored(url: str) -> int:
    """Rows in `logs` of the database at `url`."""
    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM logs")
        (n,) = cur.fetchone()
    conn.close()
    return n


def wait_stored(url: str, count: int, timeout: float) -> float:
    """Wait until `count` rows are stored; return the seconds it took (or the timeout)."""
    began = time.monotonic()
    while stored(url) < count and time.monotonic() - began < timeout:
        time.sleep(0.5)
    return time.monotonic() - began


def forget_names(settings: Settings) -> None:
    """Delete this run's Redis keys (stream, counters...): they all share its key prefix."""
    from app.pipeline.connections import redis_client

    r = redis_client(settings.redis_url)
    prefix = settings.key_prefix
    for key in r.scan_iter(match=f"{prefix}*", count=1000):
        r.delete(key)


@contextlib.contextmanager
def running(settings: Settings, *names: str, **env):
    """A Stack of `settings` with process types `names` started; stopped and its Redis
    names deleted afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(settings, Path(tmp), WEB_CONCURRENCY="2", LOG_LEVEL="WARNING", **env)
        stack.commands["floor"] = FLOOR_COMMAND
        try:
            stack.start(*names)
            if "floor" in names:
                stack.wait_http("/health")
            yield stack
        finally:
            stack.stop_all()
            forget_names(settings)


def floor(args) -> Run:
    """The reference: bench/floor_app.py under the same gunicorn settings."""
    names = f"sluice-bench-floor:{uuid.uuid4().hex[:8]}"
    settings = Settings(stream_name=f"{names}:log_queue", key_prefix=names)
    with running(settings, "floor") as stack:
        run, _ = measure(stack, args)
    return run


def sluice_open(args) -> tuple[Run, Run, str]:
    """Sluice in open mode: without, then with the drain; and how the backlog went."""
    with throwaway_database("sluice_bench_ingest") as url:
        settings = isolated_settings(url, "sluice-bench-ingest")
        with running(settings, "web") as stack:
            alone, backlog = measure(stack, args)
            stack.start("worker", "beat")
            waited = wait_stored(url, backlog, timeout=args.drain_timeout)
            note = f"backlog of {backlog:,} stored in {waited:.0f} s before the run"
            if stored(url) < backlog:
                note = f"backlog of {backlog:,} NOT stored after {waited:.0f} s: drain still busy"
            with_drain, _ = measure(stack, args)
    return alone, with_drain, note


def sluice_keyed(args) -> Run:
    """Sluice with an ingest key and the rate limiter off, no drain."""
    key = f"bench-ingest-{uuid.uuid4().hex}"
    with throwaway_database("sluice_bench_ingest") as url:
        settings = isolated_settings(
            url, "sluice-bench-ingest", ingest_keys=key, ingest_rate_limit="off"
        )
        with running(settings, "web") as stack:
            run, _ = measure(stack, args, key)
    return run


def verdict(run: Run, floor_rate: float, target: float | None = None) -> str:
    """`run`'s rate as a ratio of the floor's, against the target if any."""
    ratio = run.rate / floor_rate
    text = f"{ratio:.2f}x the floor"
    if target is not None:
        text += f" ({'OK' if ratio >= target else 'MISSED'}, target >= {target}x)"
    return text


def main(argv: list[str] | None = None) -> None:
    """Measure the floor before and after the three Sluice runs; print them with the
    ratios to the floor's mean (the machine's load drifts during a run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--drain-timeout", type=float, default=180)
    args = parser.parse_args(argv)
    print(
        f"single-log POST /data/fast, wrk {args.connections} connections x {args.seconds:g} s "
        f"({args.threads} threads, after {WARMUP_SECONDS} s warm-up); gunicorn.conf.py, "
        f"gevent, WEB_CONCURRENCY=2; all on this machine (load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    before = floor(args)
    print(f"  floor, Flask + one XADD, first              {before}", flush=True)
    alone, with_drain, note = sluice_open(args)
    print(f"  Sluice, open mode, no drain                  {alone}", flush=True)
    print(f"  Sluice, open mode, drain running             {with_drain}; {note}", flush=True)
    keyed = sluice_keyed(args)
    print(f"  Sluice, ingest key, INGEST_RATE_LIMIT=off    {keyed}", flush=True)
    after = floor(args)
    print(f"  floor, Flask + one XADD, last               {after}", flush=True)
    floor_rate = (before.rate + after.rate) / 2
    print(f"ratios to the floor's mean ({floor_rate:,.0f} req/s):")
    print(f"  open mode, no drain       {verdict(alone, floor_rate, TARGET_RATIO)}")
    print(f"  open mode, drain running  {verdict(with_drain, floor_rate)}")
    print(
        f"  ingest key, limiter off   {verdict(keyed, floor_rate)}; "
        f"{keyed.rate / alone.rate:.2f}x open mode"
    )
    print(
        'Sluice ran in open mode (no keys: README "Security") except in the keyed run, '
        "which sends `Authorization: Bearer <ingest key>` with INGEST_RATE_LIMIT=off "
        f"(load average at the end {os.getloadavg()[0]:.1f})."
    )


if __name__ == "__main__":
    main()
