"""Fan-out that scales with watchers: one filter pass and one encoding per distinct filter
(real Hub, real Redis Pub/Sub), and many real WebSocket clients of one gunicorn/gevent
worker, a slow reader among them, each getting every log once and every frame whole."""

from __future__ import annotations

import socket
import threading
import time

import orjson
import pytest
import requests
import websocket

from app.pipeline import fanout
from app.pipeline.fanout import Batch, Hub, Subscriber
from app.pipeline.filters import Filters
from tests.helpers import post, wait_for
from tests.stack import Stack
from tests.test_live import Client


class Recorder(Subscriber):
    """A subscriber that keeps what the hub offers it."""

    def __init__(self, filters: Filters) -> None:
        super().__init__(filters)
        self.offered: list[Batch] = []

    def offer(self, item) -> bool:
        self.offered.append(item)
        return False


def stored(ident: int, level: str, source: str) -> dict:
    return {"id": ident, "level": level, "source": source, "application": None, "message": "m"}


def test_a_batch_is_filtered_and_encoded_once_per_distinct_filter(r, settings):
    encoded: list[bytes] = []

    def encode(payload: bytes) -> bytes:
        encoded.append(payload)
        return b"frame:" + payload

    hub = Hub(settings, encode=encode)
    errors, db, nothing = (
        Filters(levels=("ERROR",)),
        Filters(sources=("db",)),
        Filters(sources=("x",)),
    )
    groups = {Filters(): 20, errors: 20, db: 5, nothing: 5}
    subs = {flt: [Recorder(flt) for _ in range(n)] for flt, n in groups.items()}
    for group in subs.values():
        for sub in group:
            hub.add(sub)
    logs = [stored(1, "INFO", "db"), stored(2, "ERROR", "web"), stored(3, "ERROR", "db")]
    fanout.publish(r, settings.pubsub_channel, logs)
    wait_for(lambda: all(s.offered for flt in (Filters(), errors, db) for s in subs[flt]))
    time.sleep(0.2)  # anything else the hub would do with this message
    assert len(encoded) == 3  # one per filter that something passed, whatever the clients
    for flt, expected in ((Filters(), [1, 2, 3]), (errors, [2, 3]), (db, [1, 3])):
        frames = {id(s.offered[0].frame) for s in subs[flt]}
        assert len(frames) == 1  # one object shared by the group
        batch = subs[flt][0].offered[0]
        assert [e["id"] for e in batch.logs] == expected
        assert batch.frame == b"frame:" + orjson.dumps({"type": "logs", "logs": batch.logs})
    assert not any(s.offered for s in subs[nothing])

    moved = subs[nothing][0]
    hub.refilter(moved, errors)
    assert hub.count == 50
    fanout.publish(r, settings.pubsub_channel, [stored(4, "ERROR", "web")])
    wait_for(lambda: moved.offered)
    assert moved.offered[0] is subs[errors][0].offered[-1]  # it joined the group's batch
    for group in subs.values():
        for sub in group:
            hub.remove(sub)
    assert hub.count == 0


@pytest.fixture
def web(settings, tmp_path):
    # Pings far apart: a reader this slow would otherwise answer a ping too late and be
    # closed by simple-websocket's ping timeout, which is not what this test is about.
    overrides = {"ws_buffer": 1000, "ws_ping_interval": 120.0}
    stack = Stack(settings.with_overrides(**overrides), tmp_path, WEB_CONCURRENCY="1")
    stack.start("web")
    yield stack
    stack.stop_all()


class SlowReader(threading.Thread):
    """A client with a tiny receive buffer that reads slowly: the server's writes to it
    are partial, and every frame must still arrive whole."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.ws = websocket.create_connection(
            url,
            timeout=30,
            sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
            skip_utf8_validation=True,  # as Client: `recv` still decodes as UTF-8
        )
        self.ids: list[int] = []
        self.dropped = 0
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            while True:
                message = orjson.loads(self.ws.recv())
                if message["type"] == "logs":
                    self.ids += [log["id"] for log in message["logs"]]
                elif message["type"] == "dropped":
                    self.dropped += message["count"]
                time.sleep(0.01)
        except websocket.WebSocketConnectionClosedException:
            return
        except Exception as exc:  # a torn frame shows up here, as a protocol error
            self.error = exc


@pytest.mark.system
def test_many_clients_of_one_worker_each_get_every_log_once(web):
    url = f"ws://127.0.0.1:{web.port}/ws/logs"
    everyone = [Client(url) for _ in range(40)]
    errors_only = [Client(url + "?min_level=ERROR") for _ in range(20)]
    slow = SlowReader(url)
    for client in everyone + errors_only:
        wait_for(lambda c=client: c.of_type("filters"))
    posted, errors = [], []
    with requests.Session() as session:
        for i in range(30):
            level = "ERROR" if i % 3 == 0 else "INFO"
            ids = post(web.url, [{"message": "z" * 3000, "level": level}] * 20, session)
            posted += ids
            errors += ids if level == "ERROR" else []
    for client in everyone:
        wait_for(lambda c=client: len(c.logs()) >= len(posted), timeout=60)
        assert [log["id"] for log in client.logs()] == posted
    for client in errors_only:
        wait_for(lambda c=client: len(c.logs()) >= len(errors), timeout=60)
        assert [log["id"] for log in client.logs()] == errors
    wait_for(lambda: slow.error or len(slow.ids) + slow.dropped >= len(posted), timeout=60)
    assert slow.error is None
    assert slow.ids == sorted(set(slow.ids))  # whole frames, each log once, in order
    assert len(slow.ids) + slow.dropped == len(posted)
    for client in everyone + errors_only:
        client.close()
    slow.ws.close()
