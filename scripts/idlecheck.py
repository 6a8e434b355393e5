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

import psycopg2
import requests

from scripts.devstack import ROOT, VENV_BIN, Services, say, with_database

PROCESSES = ("web", "worker", "beat", "flower", "syslog")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    """`make run`'s environment, with names and ports of this check's own."""
    names = f"sluice-idlecheck:{uuid.uuid4().hex[:8]}"
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
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def flower(env: dict, path: str):
    """GET a Flower API path; its JSON."""
    url = f"http://127.0.0.1:{env['FLOWER_PORT']}{path}"
    return requests.get(url, timeout=10).json()


def wait_for_worker(env: dict, timeout: float = 90) -> None:
    """Until Flower lists a worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if flower(env, "/api/workers?refresh=1"):
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(1)
    raise SystemExit(f"no worker showed up in Flower within {timeout:.0f}s")


def worker_lines(log: Path, offset: int) -> list[str]:
    """The worker's lines (honcho's `worker.1 | ...`) written after `offset`."""
    text = log.read_bytes()[offset:].decode(errors="replace")
    return [line.split("| ", 1)[-1] for line in text.splitlines() if " worker.1 " in line[:24]]


def report(tasks: dict, idle_since: float, lines: list[str], seconds: float) -> bool:
    """Print what was seen; True when it is as it should be."""
    states = collections.Counter(t["state"] for t in tasks.values())
    drains = [
        t
        for t in tasks.values()
        if t.get("name") == "sluice.drain" and (t.get("received") or 0) >= idle_since
    ]
    info = [line for line in lines if " INFO " in line]
    per_drain = len(info) / len(drains) if drains else float(len(info))
    print(f"idle for {seconds:.0f} s")
    print(f"Flower /api/tasks: {len(tasks)} tasks: {dict(sorted(states.items()))}")
    print(f"drains received while idle: {len(drains)}")
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
        env = environment(with_database(server_url, database), services.redis_url(), workdir)
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
        wait_for_worker(env)
        time.sleep(3)  # past the worker's start-up lines
        offset, idle_since = log.stat().st_size, time.time()
        say(f"idle for {seconds:.0f} s")
        time.sleep(seconds)
        tasks = flower(env, "/api/tasks")
        return report(tasks, idle_since, worker_lines(log, offset), seconds)
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
    keys = list(r.scan_iter(match=f"{env['KEY_PREFIX']}*", count=1000))
    keys += [env["CELERY_QUEUE"], f"_kombu.binding.{env['CELERY_QUEUE']}"]
    r.delete(*keys)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="idle time (default 120)")
    args = parser.parse_args(argv)
    return 0 if run_check(args.seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
