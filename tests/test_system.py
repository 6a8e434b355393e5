"""The whole system as its Procfile runs it: gunicorn (gevent), Celery worker, beat, Flower.

These are the spine's acceptance checks: everything posted is stored exactly once and
broadcast, and a warm shutdown finishes its chunk. Faults (kill -9 of a worker or of a
web process, PostgreSQL and Redis restarts, beat stopped) are in tests/faults/.
"""

from __future__ import annotations

import socket
import threading
import time

import orjson
import pytest
import requests
import websocket
from sqlalchemy import create_engine, text

from tests.helpers import wait_for
from tests.stack import Stack

pytestmark = pytest.mark.system


def post_batches(url: str, batches: int, size: int, label: str, out: list, stop=None) -> None:
    """POST `batches` requests of `size` logs to /data/fast; record (status, ids)."""
    session = requests.Session()
    for b in range(batches):
        if stop is not None and stop.is_set():
            return
        body = [{"message": f"{label} {b}-{i}", "source": "system-test"} for i in range(size)]
        try:
            response = session.post(
                f"{url}/data/fast",
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            out.append((response.status_code, response.json().get("ids", [])))
        except requests.RequestException as exc:
            out.append((None, str(exc)))


def counts(db_url: str) -> tuple[int, int]:
    """(rows, distinct stream ids) stored by system tests."""
    eng = create_engine(db_url)
    with eng.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT stream_id) FROM logs WHERE source = 'system-test'"
            )
        ).one()
    eng.dispose()
    return tuple(row)


# CLAIM_IDLE_MS is short here so a killed worker's entries come back quickly, but not so
# short that a chunk merely slowed by a busy machine is claimed (each claim is a delivery).
@pytest.fixture
def stack(settings, tmp_path):
    s = Stack(
        settings.with_overrides(drain_budget=1.0, drain_interval=0.5, claim_idle_ms=5000), tmp_path
    )
    yield s
    s.stop_all()


def test_thousand_logs_stored_broadcast_and_monitored(stack, settings):
    stack.start("web", "worker", "beat", "flower")
    ws = websocket.create_connection(f"ws://127.0.0.1:{stack.port}/ws/logs", timeout=10)
    received: list[dict] = []

    def read():
        try:
            while frame := ws.recv():
                message = orjson.loads(frame)
                if message["type"] == "logs":
                    received.extend(message["logs"])
        except (websocket.WebSocketException, OSError):
            pass

    threading.Thread(target=read, daemon=True).start()
    results: list = []
    started = time.monotonic()
    post_batches(stack.url, 10, 100, "thousand", results)
    assert all(status == 202 for status, _ in results), results[:3]
    wait_for(lambda: counts(settings.database_url) == (1000, 1000), timeout=5)
    elapsed = time.monotonic() - started
    wait_for(lambda: len(received) >= 1000, timeout=5)
    assert len({log["id"] for log in received}) == 1000
    print(f"1000 logs posted and committed in {elapsed:.2f}s")

    health = requests.get(f"{stack.url}/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["websocket_connections"] == 1
    status = requests.get(f"{stack.url}/queue/status", timeout=5).json()
    assert (status["lag"], status["pending_messages"]) == (0, 0)
    node = stack.env["CELERY_HOSTNAME"].replace("%h", socket.gethostname())
    workers = wait_for(
        lambda: stack.wait_http("/api/workers?refresh=1", port=stack.flower_port).json(), timeout=30
    )
    assert node in workers, workers.keys()
    ws.close()


def test_warm_shutdown_finishes_the_chunk_in_flight(stack, settings):
    stack.start("web", "worker", "beat")
    results: list = []
    post_batches(stack.url, 50, 100, "warm", results)
    wait_for(lambda: counts(settings.database_url)[0] > 0, timeout=30)
    stack.stop("worker")  # SIGTERM: Celery's warm shutdown
    status = requests.get(f"{stack.url}/queue/status", timeout=5).json()
    assert status["pending_messages"] == 0, status["consumers"]
    stack.start("worker")
    wait_for(lambda: counts(settings.database_url) == (5000, 5000), timeout=60)


def test_idle_drains_succeed_quietly_and_a_log_is_drained_within_a_second(stack, settings):
    stack.start("web", "worker", "beat", "flower")
    wait_for(lambda: stack.wait_http("/api/workers?refresh=1", port=stack.flower_port).json())
    worker_log = stack.workdir / "worker.log"
    quiet_from = worker_log.stat().st_size
    time.sleep(6)  # idle: DRAIN_INTERVAL 0.5, DRAIN_BUDGET 1.0
    tasks = stack.wait_http("/api/tasks?taskname=sluice.drain", port=stack.flower_port).json()
    states = [t["state"] for t in tasks.values()]
    assert states.count("REVOKED") == 0, states
    assert 6 <= len(states) <= 60, states  # per interval and per budget, no pile-up
    idle_lines = worker_log.read_bytes()[quiet_from:].decode(errors="replace")
    assert "sluice.drain" not in idle_lines, idle_lines[-2000:]
    assert " INFO " not in idle_lines, idle_lines[-2000:]
    started = time.monotonic()
    post_batches(stack.url, 1, 1, "prompt", [])
    wait_for(lambda: counts(settings.database_url)[0] == 1, timeout=5, interval=0.02)
    delay = time.monotonic() - started
    print(f"one log committed {delay:.3f}s after it was posted")
    assert delay < 1.5
