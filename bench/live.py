"""Live fan-out benchmark: hundreds of WebSocket viewers while logs flow through the drain.

    python -m bench.live                        own stack: gunicorn (gevent, 2 workers),
                                                Celery worker and beat, throwaway database
    python -m bench.live --url http://127.0.0.1:8000   a running system (its drain must run)
    python -m bench.live --clients 200 --seconds 10    smaller
    python -m bench.live --flamegraph docs/perf/live-after.svg   and a py-spy flame graph of
                                                the busiest web worker during the load

Logs go to /data/fast at --rate logs/s in batches, each carrying its send time in
metadata; every client records, per log, the time from POST to the frame reaching it.
Measured in the same run: a reference phase with one client, then the load phase with
--clients clients (spread over a few client processes: asyncio and a minimal WebSocket
client, so the client side stays light). Also the RSS and CPU of the web processes
before, with the clients connected, and during the load. Loopback only; every wait is
bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psutil
import requests

from bench.common import isolated_settings, post_logs, realistic_log, throwaway_database

WAVE = 25  # connections opened at once per client process (each costs a DB query)
BATCH = 50  # logs per POST
SETTLE_S = 20  # at most this long for the last logs to arrive after posting stops


# ------------------------------------------------------------------ client processes


class Tally:
    """What one client process saw: latencies (ms, bucketed), counts, problems."""

    def __init__(self) -> None:
        self.latency_ms: Counter[int] = Counter()
        self.received: list[int] = []  # per client
        self.dropped = 0
        self.duplicates = 0
        self.connected = 0
        self.errors: Counter[str] = Counter()


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payloads here are < 126 bytes)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return first & 0x0F, await reader.readexactly(size)


class Decoded:
    """What a tally needs from one `logs` frame: ids, and how many logs per send time."""

    __slots__ = ("first", "ids", "last", "sent")

    def __init__(self, logs: list[dict]) -> None:
        self.ids = [log["id"] for log in logs]
        self.first, self.last = self.ids[0], self.ids[-1]
        self.sent = Counter(log["metadata"]["sent"] for log in logs)


class Frames:
    """Decodes each distinct frame payload once per client process. The clients of one
    process receive byte-identical frames (one filter, one encoding on the server), so
    parsing every copy measured this process's JSON decoder, not the server: it took
    about 60 % of a client process's CPU (py-spy) and starved the web processes of the
    cores they share. Each client still reads and frames its own bytes."""

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self.cache: dict[bytes, object] = {}

    def decode(self, payload: bytes):
        found = self.cache.get(payload)
        if found is None:
            message = orjson.loads(payload)
            found = Decoded(message["logs"]) if message.get("type") == "logs" else message
            if len(self.cache) >= self.keep:
                self.cache.pop(next(iter(self.cache)))  # the oldest
            self.cache[payload] = found
        return found


async def _client(host: str, port: int, index: int, tally: Tally, frames: Frames) -> None:
    """One viewer: handshake, then tally every log until cancelled."""
    reader, writer = await asyncio.open_connection(host, port, limit=2**22)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws/logs HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    last = 0
    try:
        while True:
            opcode, payload = await _read_frame(reader)
            if opcode == 0x9:  # ping: the server closes clients that never answer
                writer.write(_frame(0xA, payload))
                continue
            if opcode == 0x8:
                return
            now = time.time()
            message = frames.decode(payload)
            if isinstance(message, Decoded):
                if message.first <= last:
                    tally.duplicates += sum(1 for i in message.ids if i <= last)
                last = message.last
                for sent, n in message.sent.items():
                    tally.latency_ms[int((now - sent) * 1000)] += n
                tally.received[index] += len(message.ids)
            elif message.get("type") == "filters":
                tally.connected += 1
            elif message.get("type") == "dropped":
                tally.dropped += message["count"]
    finally:
        writer.close()


async def _clients(host, port, count, slot, progress, stop, results) -> None:
    tally = Tally()
    tally.received = [0] * count
    frames = Frames()
    tasks: list[asyncio.Task] = []

    def note(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception():
            tally.errors[type(task.exception()).__name__] += 1

    for start in range(0, count, WAVE):
        for i in range(start, min(count, start + WAVE)):
            tasks.append(asyncio.create_task(_client(host, port, i, tally, frames)))
            tasks[-1].add_done_callback(note)
        deadline = time.monotonic() + 30
        while tally.connected + sum(tally.errors.values()) < len(tasks):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
    while not stop.is_set():
        progress[slot * 3 : slot * 3 + 3] = [tally.connected, sum(tally.received), tally.dropped]
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put(
        {
            "latency_ms": dict(tally.latency_ms),
            "received": tally.received,
            "dropped": tally.dropped,
            "duplicates": tally.duplicates,
            "errors": dict(tally.errors),
        }
    )


def client_process(host, port, count, slot, progress, stop, results) -> None:
    """Entry point of a client process: `count` viewers until `stop` is set."""
    asyncio.run(_clients(host, port, count, slot, progress, stop, results))


# ------------------------------------------------------------------ the system side


class WebProcesses:
    """The processes serving the web port (gunicorn's master and its workers)."""

    def __init__(self, port: int) -> None:
        listening = {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid
        }
        procs = {}
        for pid in listening:
            # The socket is reported under one process that holds it (often a worker);
            # its gunicorn master is the parent running the same command line.
            master = psutil.Process(pid)
            parent = master.parent()
            if parent is not None and parent.cmdline() == master.cmdline():
                master = parent
            for proc in [master, *master.children(recursive=True)]:
                procs[proc.pid] = proc
        self.procs = list(procs.values())

    def rss_mb(self) -> float:
        """Summed resident memory, MB."""
        return sum(p.memory_info().rss for p in self.procs) / 2**20

    def cpu_s(self) -> float:
        """Summed CPU time used so far, s."""
        return sum(sum(p.cpu_times()[:2]) for p in self.procs)


PRODUCERS = 4  # posting threads: one POST at a time fell behind the rate on a busy machine


def produce(base: str, rate: int, seconds: float) -> tuple[int, float]:
    """POST `rate` logs/s to /data/fast for `seconds` from PRODUCERS threads, each at its
    share of the rate and offset from the others; (accepted, achieved logs/s)."""
    accepted = [0] * PRODUCERS
    interval = BATCH * PRODUCERS / rate
    started = time.monotonic()

    def post_share(index: int) -> None:
        rng, session = random.Random(index), requests.Session()
        next_at = started + interval * index / PRODUCERS
        time.sleep(max(0.0, next_at - time.monotonic()))
        while time.monotonic() - started < seconds:
            batch = [realistic_log(rng) for _ in range(BATCH)]
            sent = time.time()
            for log in batch:
                log["metadata"]["sent"] = sent
            if post_logs(session, base, batch).status_code == 202:
                accepted[index] += len(batch)
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=post_share, args=(i,)) for i in range(PRODUCERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(accepted), sum(accepted) / (time.monotonic() - started)


def percentile(latency_ms: Counter, p: float) -> float:
    """The p-th percentile of bucketed latencies (nearest rank)."""
    total = sum(latency_ms.values())
    if not total:
        return float("nan")
    rank, seen = max(1, round(p / 100 * total)), 0
    for ms in sorted(latency_ms):
        seen += latency_ms[ms]
        if seen >= rank:
            return ms
    return max(latency_ms)


class Fleet:
    """`clients` viewers spread over client processes, from connect to their tallies."""

    def __init__(self, base: str, clients: int, procs: int) -> None:
        parts = urlsplit(base)
        ctx = multiprocessing.get_context("spawn")
        procs = max(1, min(procs, clients))
        self.clients = clients
        # Per process: connected, logs received, logs the server reported dropped.
        self.progress = ctx.Array("q", procs * 3, lock=False)
        self.stop, self.results = ctx.Event(), ctx.Queue()
        shares = [clients // procs + (i < clients % procs) for i in range(procs)]
        self.procs = [
            ctx.Process(
                target=client_process,
                args=(parts.hostname, parts.port, n, i, self.progress, self.stop, self.results),
                daemon=True,
            )
            for i, n in enumerate(shares)
        ]
        for proc in self.procs:
            proc.start()

    def wait_connected(self, timeout: float = 120) -> float:
        """Seconds until every client has its `filters` message."""
        started = time.monotonic()
        _wait(lambda: sum(self.progress[0::3]) >= self.clients, timeout, "clients to connect")
        return time.monotonic() - started

    def settle(self, posted: int) -> None:
        """Wait (bounded) until every client has every posted log, or heard it dropped."""

        def accounted() -> bool:
            done = sum(self.progress[1::3]) + sum(self.progress[2::3])
            return done >= posted * self.clients

        with contextlib.suppress(AssertionError):
            _wait(accounted, SETTLE_S)

    def close(self) -> list[dict]:
        """Disconnect everyone; each client process's tally."""
        self.stop.set()
        tallies = [self.results.get(timeout=60) for _ in self.procs]
        for proc in self.procs:
            proc.join(10)
        return tallies


class Usage:
    """CPU shares (web processes, client processes, the whole machine) and the web
    processes' peak RSS while the block runs."""

    def __init__(self, web: WebProcesses | None, clients: list[psutil.Process]) -> None:
        self.web, self.clients = web, clients
        self.cpu = self.peak = None

    def __enter__(self) -> Usage:
        psutil.cpu_percent()  # starts the machine-wide measurement
        self.started, self.clients_before = time.monotonic(), self._clients_cpu()
        if self.web:
            self.cpu_before = self.web.cpu_s()
            self.peak, self.sampling = self.web.rss_mb(), True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _clients_cpu(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.clients)

    def _sample(self) -> None:
        while self.sampling:
            self.peak = max(self.peak, self.web.rss_mb())
            time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        # Everything on the machine (clients, database, worker, other users) competes
        # with the web processes for these cores: the context for every figure.
        self.machine = psutil.cpu_percent() / 100
        elapsed = time.monotonic() - self.started
        self.clients_cpu = (self._clients_cpu() - self.clients_before) / elapsed
        if self.web:
            self.sampling = False
            self.thread.join()
            self.cpu = (self.web.cpu_s() - self.cpu_before) / elapsed


def flamegraph(web: WebProcesses, path: str, seconds: float) -> subprocess.Popen:
    """Start py-spy on the web worker holding the most connections (one gunicorn worker
    serves about half the clients); it writes an SVG flame graph to `path`."""
    workers = [p for p in web.procs if p.parent() in web.procs]
    busiest = max(workers, key=lambda p: len(p.net_connections(kind="tcp")))
    spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(busiest.pid)]
    options = ["--duration", str(int(seconds)), "--rate", "100", "--format", "flamegraph"]
    return subprocess.Popen([*spy, *options, "--output", path], stdout=subprocess.DEVNULL)


def run_phase(base, clients, procs, rate, seconds, web, profile: str | None = None) -> dict:
    """Connect `clients` viewers, post for `seconds`, collect what they saw."""
    baseline = _connections(base)
    fleet = Fleet(base, clients, procs)
    spy = None
    try:
        connect_s = fleet.wait_connected()
        health = _connections(base) - baseline
        rss_connected = web.rss_mb() if web else None
        if profile and web:
            spy = flamegraph(web, profile, min(10, seconds))
        with Usage(web, [psutil.Process(p.pid) for p in fleet.procs]) as usage:
            posted, achieved = produce(base, rate, seconds)
            fleet.settle(posted)
    finally:
        if spy is not None:
            spy.wait(60)
        tallies = fleet.close()
        # Let the server notice the closed sockets before anything else is measured.
        with contextlib.suppress(AssertionError):
            _wait(lambda: _connections(base) <= baseline, 15)
    return {
        "clients": clients,
        "connect_s": connect_s,
        "health": health,
        "posted": posted,
        "rate": achieved,
        "rss_connected": rss_connected,
        "rss_peak": usage.peak,
        "cpu": usage.cpu,
        "machine": usage.machine,
        "clients_cpu": usage.clients_cpu,
        **summarize(tallies),
    }


def summarize(tallies: list[dict]) -> dict:
    """Merge the client processes' tallies: counts and latency percentiles."""
    latency = Counter()
    for part in tallies:
        latency.update({int(k): v for k, v in part["latency_ms"].items()})
    received = [n for part in tallies for n in part["received"]]
    return {
        "received_min": min(received),
        "dropped": sum(p["dropped"] for p in tallies),
        "duplicates": sum(p["duplicates"] for p in tallies),
        "errors": sum((Counter(p["errors"]) for p in tallies), Counter()),
        "p50": percentile(latency, 50),
        "p90": percentile(latency, 90),
        "p99": percentile(latency, 99),
        "max": max(latency, default=float("nan")),
    }


def _connections(base: str) -> int:
    return requests.get(f"{base}/health", timeout=10).json()["websocket_connections"]


def _wait(predicate, timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def own_stack():
    """The Procfile's web (gunicorn, gevent, 2 workers), worker and beat on a throwaway
    database and unique Redis names; yields its base URL."""
    from app.pipeline.connections import redis_client
    from tests.stack import Stack

    with throwaway_database("sluice_bench_live") as url, tempfile.TemporaryDirectory() as tmp:
        settings = isolated_settings(url, "sluice-bench", log_level="WARNING")
        stack = Stack(settings, Path(tmp), LOG_LEVEL="WARNING")
        try:
            stack.start("web", "worker", "beat")
            yield stack.url
        finally:
            stack.stop_all()
            r = redis_client(settings.redis_url)
            keys = list(r.scan_iter(match=f"{settings.key_prefix}*", count=1000))
            if keys:
                r.delete(*keys)


def report(args, rss_before, ref: dict, load: dict) -> None:
    """Print the table."""
    print(
        f"\nLive fan-out: {args.rate:,} logs/s to /data/fast in batches of {BATCH}, "
        f"{os.cpu_count()} CPUs; latency is POST -> the frame at the client; web CPU is the "
        "gunicorn processes' CPU time over the phase and clients the client processes' (100% = "
        "one core); machine is how busy all cores were (everything: clients, database, "
        "worker, other users)"
    )
    head = (
        f"{'phase':<10} {'clients':>7} {'connect':>8} {'posted':>7} {'rate/s':>7} "
        f"{'got/client(min)':>15} {'dropped':>8} {'dup':>4} {'p50 ms':>7} {'p90 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'web CPU':>8} {'clients':>8} {'machine':>8}"
    )
    print(head + "\n" + "-" * len(head))
    for name, r in (("reference", ref), ("load", load)):
        cpu = f"{r['cpu'] * 100:.0f}%" if r["cpu"] is not None else "-"
        print(
            f"{name:<10} {r['clients']:>7} {r['connect_s']:>7.1f}s {r['posted']:>7,} "
            f"{r['rate']:>7,.0f} {r['received_min']:>15,} {r['dropped']:>8,} "
            f"{r['duplicates']:>4} {r['p50']:>7,.0f} {r['p90']:>7,.0f} {r['p99']:>7,.0f} "
            f"{r['max']:>7,.0f} {cpu:>8} {r['clients_cpu']:>8.0%} {r['machine']:>8.0%}"
        )
        if r["errors"]:
            print(f"  client errors: {dict(r['errors'])}")
        if r["health"] != r["clients"]:
            print(f"  /health counted {r['health']} connections for {r['clients']} clients")
    if rss_before is not None:
        print(
            f"web RSS (gunicorn master + workers): {rss_before:.0f} MB before; "
            f"{load['rss_connected']:.0f} MB with {load['clients']} clients connected; "
            f"{load['rss_peak']:.0f} MB peak during the load"
        )


def main() -> None:
    """Run the reference and the load phase and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Sluice (default: start one)")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--rate", type=int, default=1000, help="logs/s")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--reference-seconds", type=float, default=10)
    parser.add_argument("--warmup-seconds", type=float, default=3)
    parser.add_argument(
        "--flamegraph", metavar="SVG", help="py-spy flame graph of a web worker under the load"
    )
    args = parser.parse_args()
    if urlsplit(args.url or "http://127.0.0.1").hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must be a loopback address")

    with contextlib.ExitStack() as stack:
        base = args.url.rstrip("/") if args.url else stack.enter_context(own_stack())
        web = WebProcesses(urlsplit(base).port)
        web = web if web.procs else None  # not ours to inspect: no RSS/CPU figures
        rss_before = web.rss_mb() if web else None
        # Warm up (first drain tasks, connection pools, hub subscriptions): not reported.
        run_phase(base, 1, 1, args.rate, args.warmup_seconds, web)
        ref = run_phase(base, 1, 1, args.rate, args.reference_seconds, web)
        load = run_phase(
            base, args.clients, args.client_procs, args.rate, args.seconds, web, args.flamegraph
        )
    report(args, rss_before, ref, load)


if __name__ == "__main__":
    main()
