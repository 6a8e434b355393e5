"""The faults themselves, against a running Stack: kills aimed at the process doing the
work, and a look at the queue to know when everything has settled."""

from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import redis
import requests

from tests.helpers import wait_for
from tests.stack import Stack


def drain_consumers(r: redis.Redis, settings) -> list[tuple[str, int, int]]:
    """(consumer name, its pid, entries it holds delivered and not acked) per consumer."""
    try:
        found = r.xinfo_consumers(settings.stream_name, settings.consumer_group)
    except redis.ResponseError:  # no stream or group yet
        return []
    out = []
    for c in found:
        name = c["name"].decode()
        out.append((name, int(name.rsplit("-", 1)[1]), c["pending"]))
    return out


def pending_of(r: redis.Redis, settings, consumer: str) -> int:
    """Entries `consumer` was delivered and never acked."""
    rows = r.xpending_range(
        settings.stream_name, settings.consumer_group, "-", "+", 10_000, consumername=consumer
    )
    return len(rows)


def kill_drain_mid_chunk(stack: Stack, r: redis.Redis, settings, group: bool) -> int:
    """SIGKILL the worker process holding a chunk it has read and not acked (with
    `group`, the whole worker: its main process and every pool child), retrying until a
    kill lands mid-chunk. Return how many entries the killed drain left pending."""
    deadline = time.monotonic() + 60  # a lost chain is restarted by beat within ~6 s
    while time.monotonic() < deadline:
        live = {p.pid for p in stack.processes("worker")}
        busy = [
            (n, pid) for n, pid, pending in drain_consumers(r, settings) if pending and pid in live
        ]
        if not busy:
            time.sleep(0.005)
            continue
        name, pid = busy[0]
        if group:
            stack.signal("worker", signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
        left = pending_of(r, settings, name)
        if left:
            return left
        if group:  # it had acked just before: try again with a new worker
            stack.start("worker")
        time.sleep(0.5)
    raise AssertionError(f"no kill landed mid-chunk; logs: {stack.tail()}")


def gunicorn_workers(stack: Stack) -> list[psutil.Process]:
    """The web's gunicorn worker processes (children of the gunicorn master)."""

    def is_gunicorn(p: psutil.Process | None) -> bool:
        try:
            return p is not None and any(Path(arg).name == "gunicorn" for arg in p.cmdline())
        except psutil.Error:
            return False

    return [p for p in stack.processes("web") if is_gunicorn(p) and is_gunicorn(p.parent())]


def kill_web_worker(stack: Stack, serving_for: float = 1.5) -> bool:
    """SIGKILL the longest-serving gunicorn worker (the master replaces it); False when
    every worker is younger than `serving_for` seconds (still booting: killing it would
    cut no request)."""
    victim = min(gunicorn_workers(stack), key=lambda p: p.create_time())
    if time.time() - victim.create_time() < serving_for:
        return False
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    return True


def cut_request_mid_body(stack: Stack) -> str:
    """Send the headers and half the body of a `POST /data/fast`, SIGKILL the gunicorn
    worker reading it, and return what the client saw (an error name, or the status if the
    request was somehow answered). The cut lands for certain, where a kill aimed at a paced
    load's short requests lands only by chance; nothing was appended, so nothing is owed."""
    url = urlsplit(stack.url)
    body = b'[{"message": "never finished", "source": "cut"}]'
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.putrequest("POST", "/data/fast")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[: len(body) // 2])
        client_port = conn.sock.getsockname()[1]

        def reader() -> psutil.Process | None:
            for p in gunicorn_workers(stack):
                with_conn = [c for c in p.net_connections("tcp") if c.raddr]
                if any(c.raddr.port == client_port for c in with_conn):
                    return p
            return None

        victim = wait_for(reader, timeout=10, interval=0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        try:
            conn.send(body[len(body) // 2 :])
            return f"answered {conn.getresponse().status}"
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
    finally:
        conn.close()


def queue_state(stack: Stack) -> dict:
    """`GET /queue/status` of the stack."""
    return requests.get(f"{stack.url}/queue/status", timeout=10).json()


def wait_queue_idle(stack: Stack, timeout: float = 60) -> dict:
    """Wait until nothing waits in the stream and nothing is pending; its status."""

    def idle():
        try:
            s = queue_state(stack)
        except (requests.RequestException, ValueError):
            return None
        return s if (s["lag"], s["pending_messages"]) == (0, 0) else None

    return wait_for(idle, timeout=timeout, interval=0.5)
