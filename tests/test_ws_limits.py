"""WebSocket limits (issue 9) with real clients: the catch-up cap and its notice, the size
cap on client messages, the send timeout for a client that stops reading, and the
per-process connection cap. The last two depend on the server (gevent's sockets, one
gunicorn worker's count), so they run against the Procfile's gunicorn."""

from __future__ import annotations

import socket
import threading
import time

import orjson
import pytest
import requests
import websocket
from werkzeug.serving import make_server

from app import create_app
from tests.helpers import post, wait_for
from tests.stack import Stack
from tests.test_live import Client


@pytest.fixture
def serve(settings):
    """Serve an app built with these overrides on a real (threaded werkzeug) server."""
    servers = []

    def _serve(**overrides) -> str:
        srv = make_server(
            "127.0.0.1", 0, create_app(settings.with_overrides(**overrides)), threaded=True
        )
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"127.0.0.1:{srv.server_port}"

    yield _serve
    for srv in servers:
        srv.shutdown()


def close_code(ws: websocket.WebSocket, timeout: float = 10) -> int:
    """Read until the server's close frame; its status code."""
    ws.settimeout(timeout)
    while True:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big")


# ------------------------------------------------------------------ the catch-up cap


@pytest.mark.parametrize(
    ("stored", "cap", "truncated"),
    [(30, 50, False), (50, 50, False), (51, 50, True), (120, 50, True), (3, 1, True)],
)
def test_catch_up_stops_at_the_cap_exactly_when_more_is_stored(serve, stored, cap, truncated):
    server = serve(ws_catchup_max=cap)
    ids = post(f"http://{server}", [{"message": f"m{i}"} for i in range(stored)])
    watcher = Client(f"ws://{server}/ws/logs?after={ids[0] - 1}")
    try:
        wait_for(lambda: len(watcher.logs()) >= min(stored, cap))
        later = post(f"http://{server}", [{"message": "live"}])
        wait_for(lambda: watcher.logs() and watcher.logs()[-1]["id"] == later[0])
        got = [log["id"] for log in watcher.logs()]
        notices = watcher.of_type("catchup_truncated")
    finally:
        watcher.close()
    assert got == ids[:cap] + later  # the cap, in id order, then live without a gap after it
    assert bool(notices) == truncated
    if truncated:
        [notice] = notices
        assert notice["sent"] == cap
        assert notice["resume_from"] == ids[cap - 1]
        assert notice["live_from"] == ids[-1]


def test_the_notice_says_where_to_page_the_rest_from(serve, settings):
    server = serve(ws_catchup_max=20)
    base = f"http://{server}"
    ids = post(base, [{"message": f"e{i}", "level": "ERROR"} for i in range(45)])
    post(base, [{"message": "not an error", "level": "INFO"}])
    watcher = Client(f"ws://{server}/ws/logs?min_level=ERROR&after={ids[0] - 1}")
    try:
        notice = wait_for(lambda: watcher.of_type("catchup_truncated"))[0]
    finally:
        watcher.close()
    assert notice["query"].startswith("/logs?")
    assert "level=ERROR%2CCRITICAL" in notice["query"]
    page = requests.get(base + notice["query"], timeout=10).json()
    assert [log["id"] for log in page["logs"]] == ids[20:]  # the rest, oldest first, filtered
    assert page["next_cursor"] is None


def test_a_resync_after_a_lost_subscription_is_capped_too(serve, r, settings):
    from tests.test_hub import _kill_hub

    server = serve(ws_catchup_max=5)
    # Stored, but published where this server does not listen: only a resync finds them.
    elsewhere = serve(pubsub_channel=f"{settings.pubsub_channel}:elsewhere")
    watcher = Client(f"ws://{server}/ws/logs")
    try:
        wait_for(lambda: watcher.of_type("filters"))
        missed = post(f"http://{elsewhere}", [{"message": f"missed {i}"} for i in range(12)])
        _kill_hub(r, settings)
        notice = wait_for(lambda: watcher.of_type("catchup_truncated"), timeout=10)[0]
        got = [log["id"] for log in watcher.logs()]
    finally:
        watcher.close()
    assert watcher.of_type("resync")
    assert got == missed[:5]
    assert (notice["sent"], notice["resume_from"], notice["live_from"]) == (
        5,
        missed[4],
        missed[-1],
    )


# ------------------------------------------------------------------ client messages


def test_a_message_over_the_cap_closes_with_1009(serve):
    server = serve(ws_max_message=1024)
    ws = websocket.create_connection(f"ws://{server}/ws/logs", timeout=10)
    try:
        assert orjson.loads(ws.recv())["type"] == "filters"
        ws.send(orjson.dumps({"type": "filter", "contains": "x" * 500}).decode())  # under it
        assert orjson.loads(ws.recv())["filters"]["contains"] == "x" * 500
        ws.send(orjson.dumps({"type": "filter", "contains": "x" * 2000}).decode())
        assert close_code(ws) == 1009
    finally:
        ws.close()


# ------------------------------------------------------------------ against gunicorn


@pytest.fixture
def gunicorn(settings, tmp_path):
    """The Procfile's web process with one gevent worker and these settings."""
    stacks = []

    def _start(**overrides) -> Stack:
        stack = Stack(settings.with_overrides(**overrides), tmp_path, WEB_CONCURRENCY="1")
        stacks.append(stack.start("web"))
        return stack

    yield _start
    for stack in stacks:
        stack.stop_all()


def connections(stack: Stack) -> int:
    return requests.get(f"{stack.url}/health", timeout=5).json()["websocket_connections"]


@pytest.mark.system
def test_a_client_that_stops_reading_is_closed_and_costs_the_others_nothing(gunicorn):
    # Pings far apart: only the send timeout can close the stalled client in this test.
    web = gunicorn(ws_send_timeout=1.0, ws_buffer=4, ws_ping_interval=120.0)
    stalled = websocket.create_connection(
        f"ws://127.0.0.1:{web.port}/ws/logs",
        timeout=10,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
    )
    assert orjson.loads(stalled.recv())["type"] == "filters"
    watcher = Client(f"ws://127.0.0.1:{web.port}/ws/logs")
    wait_for(lambda: watcher.of_type("filters"))
    assert connections(web) == 2
    posted: list[int] = []
    started = time.monotonic()
    with requests.Session() as session:
        # Until the kernel's buffers are full and a write waits past the timeout (bounded).
        while connections(web) == 2 and time.monotonic() - started < 60:
            posted += post(web.url, [{"message": "y" * 8000}] * 10, session)
    assert connections(web) == 1, "the stalled client was not closed"
    wait_for(lambda: len(watcher.logs()) == len(posted), timeout=20)
    assert [log["id"] for log in watcher.logs()] == posted  # the other client lost nothing
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionResetError)):
        while True:  # what it had buffered, then the cut (no close frame: it was not reading)
            stalled.recv()
    stalled.close()
    watcher.close()


@pytest.mark.system
def test_connections_past_the_cap_are_refused_before_the_upgrade(gunicorn):
    web = gunicorn(ws_max_connections=2)
    url = f"ws://127.0.0.1:{web.port}/ws/logs"
    first, second = Client(url), Client(url)
    wait_for(lambda: first.of_type("filters") and second.of_type("filters"))
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=10)
    assert refused.value.status_code == 503
    assert refused.value.resp_headers["retry-after"] == "5"
    body = orjson.loads(refused.value.resp_body)
    assert (body["error"], body["status"]) == ("too_many_connections", 503)
    assert "WS_MAX_CONNECTIONS" in body["message"]
    assert connections(web) == 2  # the refused one was never counted
    first.close()
    wait_for(lambda: connections(web) == 1)
    third = Client(url)  # a slot is free again
    wait_for(lambda: third.of_type("filters"))
    ids = post(web.url, [{"message": "after the refusal"}])
    wait_for(lambda: [log["id"] for log in third.logs()] == ids)
    second.close()
    third.close()
