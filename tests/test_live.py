"""WS /ws/logs with a real WebSocket client against a real (threaded werkzeug) server."""

from __future__ import annotations

import json
import socket
import threading
import time

import orjson
import websocket

from app.pipeline import stream
from tasks.drain import drain_stream
from tests.helpers import wait_for


class Client:
    """A WebSocket client that collects every message in the background."""

    def __init__(self, url: str) -> None:
        # websocket-client's own UTF-8 check is pure Python (most of a busy test's CPU);
        # `recv` still decodes each text frame as UTF-8, which raises on a bad one.
        self.ws = websocket.create_connection(url, timeout=10, skip_utf8_validation=True)
        self.messages: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while frame := self.ws.recv():
                # json, not orjson: it keeps integers beyond 64 bits exact
                self.messages.append(json.loads(frame))
        except (websocket.WebSocketException, OSError):
            return

    def logs(self) -> list[dict]:
        return [log for m in self.messages if m["type"] == "logs" for log in m["logs"]]

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]

    def send(self, message: dict) -> None:
        self.ws.send(orjson.dumps(message).decode())

    def close(self) -> None:
        self.ws.close()


def post(client, logs):
    response = client.post("/data/", data=orjson.dumps(logs), content_type="application/json")
    assert response.status_code == 201, response.json
    return response.json["ids"]


def test_receives_every_stored_log(client, connect):
    watcher = connect()
    ids = post(client, [{"message": f"m{i}"} for i in range(20)])
    wait_for(lambda: len(watcher.logs()) == 20)
    assert [log["id"] for log in watcher.logs()] == ids


def test_drained_logs_arrive_with_stream_ids(client, connect, r, settings):
    watcher = connect()
    stream.ensure_group(r, settings)
    accepted = client.post(
        "/data/fast", data=b'[{"message":"a"},{"message":"b"}]', content_type="application/json"
    ).json["ids"]
    drain_stream(settings, "c1", budget=0.3)
    wait_for(lambda: len(watcher.logs()) == 2)
    assert [log["stream_id"] for log in watcher.logs()] == accepted


def test_filters_on_connect_are_applied_server_side(client, connect):
    errors = connect("?min_level=ERROR&source=db")
    post(
        client,
        [
            {"message": "hidden info", "level": "INFO", "source": "db"},
            {"message": "hidden other source", "level": "ERROR", "source": "web"},
            {"message": "shown", "level": "CRITICAL", "source": "db"},
        ],
    )
    wait_for(lambda: errors.logs())
    time.sleep(0.2)
    assert [log["message"] for log in errors.logs()] == ["shown"]


def test_filter_change_by_message(client, connect):
    watcher = connect()
    watcher.send({"type": "filter", "contains": "needle"})
    wait_for(lambda: len(watcher.of_type("filters")) == 2)
    assert watcher.of_type("filters")[-1]["filters"]["contains"] == "needle"
    post(client, [{"message": "hay"}, {"message": "a NEEDLE here"}])
    wait_for(lambda: watcher.logs())
    time.sleep(0.2)
    assert [log["message"] for log in watcher.logs()] == ["a NEEDLE here"]


def test_bad_filter_message_is_an_error_not_a_disconnect(client, connect):
    watcher = connect()
    watcher.send({"type": "filter", "min_level": "LOUD"})
    wait_for(lambda: watcher.of_type("error"))
    assert "min_level" in watcher.of_type("error")[0]["fields"]
    post(client, [{"message": "still connected"}])
    wait_for(lambda: watcher.logs())


def test_bad_filter_on_connect_is_reported(connect, live_server):
    client = Client(f"ws://{live_server}/ws/logs?level=NOPE")
    wait_for(lambda: client.of_type("error"))
    client.close()


def test_resume_sends_what_was_missed_then_live_without_duplicates(client, connect):
    first = post(client, [{"message": f"before {i}"} for i in range(5)])
    missed = post(client, [{"message": f"missed {i}"} for i in range(7)])
    watcher = connect(f"?after={first[-1]}")
    later = post(client, [{"message": f"after {i}"} for i in range(3)])
    wait_for(lambda: len(watcher.logs()) >= 10)
    time.sleep(0.2)
    assert [log["id"] for log in watcher.logs()] == missed + later


def test_resume_while_logs_keep_flowing_has_no_gap_or_duplicate(client, connect, app):
    stop = threading.Event()
    posted: list[int] = []

    def produce():
        with app.test_client() as c:
            while not stop.is_set():
                posted.extend(post(c, [{"message": "flow"}] * 5))

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        seen: list[int] = []
        for _ in range(4):
            wait_for(lambda: posted)
            query = f"?after={seen[-1]}" if seen else f"?after={posted[0] - 1}"
            watcher = connect(query)
            time.sleep(0.3)
            watcher.close()
            time.sleep(0.05)
            seen.extend(log["id"] for log in watcher.logs())
    finally:
        stop.set()
        producer.join()
    assert seen == sorted(set(seen)), "duplicates or out of order"
    assert seen == [i for i in posted if seen[0] <= i <= seen[-1]], "gap"


def test_slow_client_is_told_what_it_dropped(app, client, connect, live_server, settings):
    app.extensions["sluice"] = settings.with_overrides(ws_buffer=2)
    app.extensions.pop("live", None)
    # A client that does not read, with a tiny receive buffer: the server's sends block.
    slow = websocket.create_connection(
        f"ws://{live_server}/ws/logs",
        timeout=10,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
    )
    fast = connect()
    for _ in range(100):
        post(client, [{"message": "x" * 4000}] * 10)
    wait_for(lambda: len(fast.logs()) == 1000, timeout=20)
    assert len(fast.logs()) == 1000  # the other client lost nothing and was not slowed
    dropped = 0
    received = 0
    while received + dropped < 1000:
        message = orjson.loads(slow.recv())
        if message["type"] == "dropped":
            dropped += message["count"]
        elif message["type"] == "logs":
            received += len(message["logs"])
    slow.close()
    assert dropped > 0
    assert received + dropped == 1000


def test_health_counts_connections(client, connect):
    assert client.get("/health").json["websocket_connections"] == 0
    a, b = connect(), connect()
    assert client.get("/health").json["websocket_connections"] == 2
    a.close()
    wait_for(lambda: client.get("/health").json["websocket_connections"] == 1)
    b.close()
    wait_for(lambda: client.get("/health").json["websocket_connections"] == 0)
