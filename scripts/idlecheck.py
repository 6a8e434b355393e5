"""Start the whole system as `make run` does, leave it idle, and say what Flower and the
worker's log show: no REVOKED task, no INFO line per drain.

    python -m scripts.idlecheck --seconds 120

The processes are the Procfile's (web, worker, beat, Flower, syslog) under honcho, found
and migrated with `scripts.devstack`'s functions, but on a database, Redis names and ports
of their own (dropped afterwards), so a `make run` on the same machine is not disturbed.
Exits 1 if a task was REVOKED or the worker logged at INFO while idle.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import requests

from scripts.devstack import ROOT, VENV_BIN, Services, say, with_database

PROCESSES = ("web", "worker", "beat", "flower", "syslog")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def empty_redis_db(url: str) -> str:
    """`url` on the first empty Redis database from 8 up: Celery's events are broadcast
    per database, so workers of other stacks on the same server (tests) would show in this
    Flower and sync with this worker."""
    import redis

    parts = urlsplit(url)
    for db in range(8, 16):
        candidate = parts._replace(path=f"/{db}").geturl()
        if redis.Redis.from_url(candidate).dbsize() == 0:
            return candidate
    raise SystemExit("no empty Redis database in 8-15 to run the check on")


def environment(database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    """`make run`'s environment, with names and ports of this check's own."""
    tag = uuid.uuid4().hex[:8]
    names = f"sluice-idlecheck:{tag}"
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PORT": str(free_port()),
        "FLOWER_PORT": str(free_port()),
        "SYSLOG_PORT": str(free_port()),
        "FLOWER_UNAUTHENTICATED_API": "true",
        "BEAT_SCHEDULE": str(workdir / "celerybeat-schedule"),
        "STREAM_NAME": f"{names}:log_queue",
        "PUBSUB_CHANNEL": f"{names}:new_logs",
        "CELERY_QUEUE": f"{names}:celery",
        "KEY_PREFIX": names,
        "CELERY_HOSTNAME": f"sluice-idlecheck-{tag}@%h",
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def flower(env: dict, path: str):
    """GET a Flower API path; its JSON."""
    url = f"http://127.0.0.1:{env['FLOWER_PORT']}{path}"
    return requests.get(url, timeout=10).json()


def wait_for_worker(env: dict, timeout: float = 90) -> str:
    """Until Flower lists this check's worker; its node name."""
    prefix = env["CELERY_HOSTNAME"].split("@")[0] + "@"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            mine = [n for n in flower(env, "/api/workers?refresh=1") if n.startswith(prefix)]
            if mine:
                return mine[0]
        except (requests.RequestException, ValueError):
            pass
        time.sleep(1)
    raise SystemExit(f"no worker showed up in Flower within {timeout:.0f}s")


def worker_lines(log: Path, offset: int) -> list[str]:
    """The worker's lines (honcho's `worker.1 | ...`) written after `offset`."""
    text = log.read_bytes()[offset:].decode(errors="replace")
    return [line.split("| ", 1)[-1] for line in text.splitlines() if " worker.1 " in line[:24]]


def report(tasks: dict, idle_since: float, lines: list[str], seconds: float, node: str) -> bool:
    """Print what was seen; True when it is as it should be."""
    others = {t.get("worker") for t in tasks.values()} - {node, None}
    if others:
        print(f"(tasks of other workers ignored: {sorted(others)})")
    tasks = {k: t for k, t in tasks.items() if t.get("worker") in (node, None)}
    states = collections.Counter(t["state"] for t in tasks.values())
    drains = [
        t
        for t in tasks.values()
        if t.get("name") == "sluice.drain" and (t.get("received") or 0) >= idle_since
    ]
    skipped = sum(1 for t in drains if "skipped" in str(t.get("result")))
    info = [line for line in lines if " INFO " in line]
    per_drain = len(info) / len(drains) if drains else float(len(info))
    print(f"idle for {seconds:.0f} s")
    print(f"Flower /api/tasks: {len(tasks)} tasks: {dict(sorted(states.items()))}")
    print(f"drains received while idle: {len(drains)} ({skipped} beat no-ops while one ran)")
    print(
        f"worker lines while idle: {len(lines)}, at INFO: {len(info)} ({per_drain:.2f} per drain)"
    )
    for line in info[:5]:
        print(f"  {line}")
    ok = states.get("REVOKED", 0) == 0 and not info
    print("OK: no REVOKED task, no INFO line per drain" if ok else "FAIL")
    return ok


def run_check(seconds: float) -> bool:
    """Start, wait, ask, stop; True when the check passed."""
    with Services() as services, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database = f"sluice_idlecheck_{uuid.uuid4().hex[:8]}"
        server_url = services.postgres_server_url()
        redis_url = empty_redis_db(services.redis_url())
        env = environment(with_database(server_url, database), redis_url, workdir)
        for note in services.notes:
            say(note)
        try:
            for step in (["-m", "alembic", "upgrade", "head"], ["-m", "tasks.maintenance"]):
                subprocess.run([sys.executable, *step], env=env, cwd=ROOT, check=True)
            return _observe(env, workdir / "honcho.log", seconds)
        finally:
            _cleanup(server_url, database, env)


def _observe(env: dict, log: Path, seconds: float) -> bool:
    with open(log, "wb") as out:
        honcho = subprocess.Popen(
            [str(VENV_BIN / "honcho"), "start", "-f", "Procfile", *PROCESSES],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        say(f"started {', '.join(PROCESSES)}; waiting for the worker in Flower")
        node = wait_for_worker(env)
        time.sleep(3)  # past the worker's start-up lines
        offset, idle_since = log.stat().st_size, time.time()
        say(f"idle for {seconds:.0f} s")
        time.sleep(seconds)
        tasks = flower(env, "/api/tasks")
        return report(tasks, idle_since, worker_lines(log, offset), seconds, node)
    finally:
        honcho.send_signal(signal.SIGINT)
        try:
            honcho.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait(5)


def _cleanup(server_url: str, database: str, env: dict) -> None:
    import redis

    conn = psycopg2.connect(server_url.replace("postgresql+psycopg2://", "postgresql://"))
    conn.autocommit = True
    conn.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    conn.close()
    r = redis.Redis.from_url(env["REDIS_URL"])
    # This check's names, and what Celery and kombu left in the (empty before) database.
    patterns = (f"{env['KEY_PREFIX']}*", f"{env['CELERY_QUEUE']}*", "_kombu.*", "unacked*")
    keys = [k for p in patterns for k in r.scan_iter(match=p, count=1000)]
    if keys:
        r.delete(*keys)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="idle time (default 120)")
    args = parser.parse_args(argv)
    return 0 if run_check(args.seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
