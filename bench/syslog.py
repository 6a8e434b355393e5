"""Syslog benchmark: octet-counted TCP from several connections to committed rows,
Sluice against rsyslog's ompgsql writing into the same PostgreSQL.

    python -m bench.syslog [--logs 100000] [--connections 4] [--workers N] [--drain-writers N]

Without `--workers` and `--drain-writers`, the defaults of the Procfile and the settings.

Both receive the same RFC 5424 frames. Sluice: the Procfile's `syslog`, `worker` and
`beat` processes (listener -> stream -> drain -> `logs`). rsyslog: Debian's rsyslogd with
imtcp and ompgsql (batched transactions, a LinkedList queue) into a table of its own in
the same throwaway database. Each is timed from the first frame sent to the last row
committed, after a warm-up frame; `lost` is what never arrived within the wait.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

from bench.common import isolated_settings, throwaway_database
from config import Settings
from tests.receivers.syslogstack import free_udp_and_tcp_port, wait_listening
from tests.stack import Stack

RSYSLOG_CONF = """
global(workDirectory="{work}")
module(load="imtcp")
module(load="ompgsql")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="sql" type="string" option.stdsql="on" string="{insert}")
action(type="ompgsql" conninfo="{conninfo}" template="sql"
       queue.type="LinkedList" queue.size="1000000" queue.dequeueBatchSize="1000")
"""
INSERT = (
    "INSERT INTO rsyslog_events (reported, host, app, severity, message) VALUES "
    "('%timereported:::date-pgsql%', '%hostname%', '%app-name%', %syslogseverity%, '%msg%')"
)
TABLE = """CREATE TABLE rsyslog_events (id bigserial PRIMARY KEY, reported timestamptz,
  host text, app text, severity int, message text)"""


def frames(count: int, tag: str) -> list[bytes]:
    """Octet-counted RFC 5424 frames like a web fleet's, `count` of them."""
    out = []
    for i in range(count):
        body = (
            f"<14>1 2026-11-28T10:00:00.{i % 1000:03d}Z web-{i % 8} {tag} {1000 + i % 50} - - "
            f"GET /api/orders/{i} 200 in {i % 900} ms for user {i * 7919 % 10**6}"
        ).encode()
        out.append(b"%d %s" % (len(body), body))
    return out


def send(port: int, payload: list[bytes], connections: int) -> None:
    """Send the frames split over `connections` TCP connections in parallel."""

    def one(part: list[bytes]) -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            for start in range(0, len(part), 500):
                s.sendall(b"".join(part[start : start + 500]))

    threads = [
        threading.Thread(target=one, args=(payload[i::connections],)) for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_rows(dsn: str, table: str, target: int, idle: float = 20.0) -> tuple[int, float]:
    """Poll until `table` holds `target` rows or stops growing for `idle` s: (rows, when)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    last, last_change = -1, time.monotonic()
    while True:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            rows = cur.fetchone()[0]
        now = time.monotonic()
        if rows != last:
            last, last_change = rows, now
        if rows >= target or now - last_change > idle:
            conn.close()
            return rows, now
        time.sleep(0.05)


def measure(port: int, dsn: str, table: str, count: int, connections: int) -> dict:
    """Warm up with one frame, then time `count` frames to committed rows."""
    send(port, frames(1, "warmup"), 1)
    base, _ = wait_rows(dsn, table, 1, idle=60)
    started = time.monotonic()
    send(port, frames(count, "bench"), connections)
    rows, done = wait_rows(dsn, table, base + count)
    stored = rows - base
    return {
        "rows": stored,
        "lost": count - stored,
        "seconds": done - started,
        "rate": stored / (done - started),
    }


def run_sluice(url: str, tmp: Path, args) -> dict:
    """Sluice's listener, workers and beat against the throwaway database."""
    settings = isolated_settings(
        url, "bench-syslog", batch_size=500, drain_writers=args.drain_writers
    )
    port = free_udp_and_tcp_port()
    workers = {} if args.workers is None else {"WORKER_CONCURRENCY": str(args.workers)}
    stack = Stack(settings, tmp, SYSLOG_PORT=str(port), LOG_LEVEL="WARNING", **workers)
    try:
        stack.start("syslog", "worker", "beat")
        wait_listening(port)
        return measure(port, _dsn(url), "logs", args.logs, args.connections)
    finally:
        stack.stop_all()


def run_rsyslog(url: str, tmp: Path, args) -> dict:
    """rsyslogd (imtcp + ompgsql) into `rsyslog_events` of the same database."""
    dsn = _dsn(url)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(TABLE)
    port, work = free_udp_and_tcp_port(), tmp / "rsyslog"
    work.mkdir()
    conf = tmp / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=work, port=port, conninfo=dsn, insert=INSERT))
    proc = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp / "rsyslog.pid")],
        stderr=open(tmp / "rsyslogd.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    try:
        wait_listening(port)
        return measure(port, dsn, "rsyslog_events", args.logs, args.connections)
    finally:
        proc.terminate()
        proc.wait(30)


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


def main() -> None:
    """Run both sides once and print their rows/s, losses and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, help="WORKER_CONCURRENCY (default: the Procfile's)")
    parser.add_argument(
        "--drain-writers", type=int, default=Settings().drain_writers, help="DRAIN_WRITERS"
    )
    args = parser.parse_args()
    if shutil.which("rsyslogd") is None:
        raise SystemExit(
            "rsyslogd missing: run scripts/install-rsyslog.sh (make bench-syslog does)"
        )
    with throwaway_database("sluice_bench_syslog") as url, tempfile.TemporaryDirectory() as tmp:
        sluice = run_sluice(url, Path(tmp), args)
        theirs = run_rsyslog(url, Path(tmp), args)
    for name, r in (("sluice", sluice), ("rsyslog", theirs)):
        print(
            f"{name:8s} {r['rows']:,} rows in {r['seconds']:.2f}s = {r['rate']:,.0f} rows/s, "
            f"lost {r['lost']:,}"
        )
    print(
        f"ratio: Sluice at {sluice['rate'] / theirs['rate']:.2f}x rsyslog+ompgsql "
        f"({args.logs:,} logs over {args.connections} connections)"
    )


if __name__ == "__main__":
    main()
