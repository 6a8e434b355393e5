"""Live fan-out across web processes: the Procfile's gunicorn, two gevent workers.

Each web process holds one Redis subscription and its own clients; a log stored by
whichever process took the POST must reach every client of every process exactly once,
and /health must count the clients of all processes, whichever one answers.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
from werkzeug.serving import make_server

from app.web.live import live_state
from tests.helpers import post, wait_for
from tests.stack import Stack
from tests.test_live import Client

MAX_CLIENTS = 24


@pytest.fixture
def web(settings, tmp_path):
    stack = Stack(settings, tmp_path, WEB_CONCURRENCY="2")
    stack.start("web")
    yield stack
    stack.stop_all()


def clients_per_process(r, settings) -> dict[str, int]:
    """Open WebSockets by web process, as each process reports them in Redis."""
    counts = {}
    for key in r.scan_iter(match=f"{settings.key_prefix}:ws:*"):
        value = r.get(key)
        if value:
            counts[key.decode() if isinstance(key, bytes) else key] = int(value)
    return counts


def connections(stack: Stack) -> int:
    return requests.get(f"{stack.url}/health", timeout=5).json()["websocket_connections"]


@pytest.mark.system
def test_every_client_of_both_processes_gets_every_log_once(web, settings, r):
    clients: list[Client] = []
    per_process: dict[str, int] = {}
    # The kernel gives each connection to whichever worker accepts first, so keep opening
    # clients until both workers hold at least two (a handful is normally enough).
    while len(clients) < 6 or min(per_process.values(), default=0) < 2 or len(per_process) < 2:
        assert len(clients) < MAX_CLIENTS, f"one worker took every connection: {per_process}"
        client = Client(f"ws://127.0.0.1:{web.port}/ws/logs")
        wait_for(lambda c=client: c.of_type("filters"))
        clients.append(client)
        per_process = clients_per_process(r, settings)
    assert sum(per_process.values()) == len(clients), per_process
    assert connections(web) == len(clients)

    posted: list[int] = []
    with requests.Session() as session:
        for batch in range(10):
            body = [{"message": f"fan-out {batch}-{i}", "source": "processes"} for i in range(20)]
            posted.extend(post(web.url, body, session))
    for client in clients:
        wait_for(lambda c=client: len(c.logs()) >= len(posted))
    for client in clients:
        assert [log["id"] for log in client.logs()] == posted  # each once, in order
        assert not client.of_type("dropped")

    for client in clients[::2]:
        client.close()
    open_clients = clients[1::2]
    wait_for(lambda: connections(web) == len(open_clients))
    for client in open_clients:
        client.close()
    wait_for(lambda: connections(web) == 0)
    assert clients_per_process(r, settings) == {}


def test_a_process_count_outlives_its_ttl_while_clients_stay(app, client):
    _, count = live_state(app)
    count.TTL = 2  # seconds: the key would be gone by the check unless the pump refreshed it
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    watcher = Client(f"ws://127.0.0.1:{srv.server_port}/ws/logs")
    try:
        wait_for(lambda: watcher.of_type("filters"))
        time.sleep(2.5)
        assert client.get("/health").json["websocket_connections"] == 1
    finally:
        watcher.close()
        srv.shutdown()
    wait_for(lambda: client.get("/health").json["websocket_connections"] == 0)
