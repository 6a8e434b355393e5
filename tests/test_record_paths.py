"""One stored log is one record on every path: the WebSocket (live and catch-up),
`GET /logs`, `GET /logs/<id>`, `GET /logs/export` and the `POST /data/` answer."""

from __future__ import annotations

import json

import requests

from app.pipeline import stream
from app.pipeline.jsoncodec import dumps
from app.pipeline.record import STORED
from tasks.drain import drain_stream
from tests.helpers import post, wait_for
from tests.test_live import Client

LOG = {
    "message": "one record, five paths",
    "level": "warn",
    "source": "web-1",
    "application": "shop",
    "timestamp": "2026-11-30T10:00:00.123456+05:30",
    "metadata": {"user": 789, "nested": {"big": 10**20, "list": [1, "two", None]}},
}


def _views(server: str, log_id: int, after: int) -> dict[str, dict]:
    base = f"http://{server}"
    page = requests.get(f"{base}/logs", params={"limit": 1000}, timeout=10).json()["logs"]
    export = requests.get(f"{base}/logs/export", timeout=10).content.splitlines()
    # json, not orjson: metadata holds an integer beyond 64 bits
    catch_up = Client(f"ws://{server}/ws/logs?after={after}")
    wait_for(lambda: catch_up.logs())
    catch_up.close()
    return {
        "GET /logs": next(x for x in page if x["id"] == log_id),
        "GET /logs/<id>": requests.get(f"{base}/logs/{log_id}", timeout=10).json(),
        "GET /logs/export": next(x for x in map(json.loads, export) if x["id"] == log_id),
        "WS catch-up": next(x for x in catch_up.logs() if x["id"] == log_id),
    }


def _same_everywhere(views: dict[str, dict]) -> None:
    first_name, first = next(iter(views.items()))
    assert list(first) == list(STORED), first_name
    for name, view in views.items():
        # Key for key, in the same order, and value for value: the same JSON bytes.
        assert dumps(view) == dumps(first), (name, view, first)


def test_synchronous_write_is_one_record_everywhere(live_server):
    server = f"http://{live_server}"
    watcher = Client(f"ws://{live_server}/ws/logs")
    wait_for(lambda: watcher.of_type("filters"))
    (log_id,) = post(server, [LOG])  # the POST /data/ answer's id
    wait_for(lambda: watcher.logs())
    views = {"WS live": watcher.logs()[0], **_views(live_server, log_id, log_id - 1)}
    watcher.close()
    assert views["WS live"]["id"] == log_id
    assert views["WS live"]["timestamp"] == "2026-11-30T04:30:00.123456+00:00"
    assert views["WS live"]["level"] == "WARN"
    _same_everywhere(views)


def test_drained_write_is_one_record_everywhere(live_server, client, r, settings):
    """The drain's publish gives the same record as the reads."""
    watcher = Client(f"ws://{live_server}/ws/logs")
    wait_for(lambda: watcher.of_type("filters"))
    stream.ensure_group(r, settings)
    answer = client.post("/data/fast", data=dumps(LOG), content_type="application/json")
    assert answer.status_code == 202
    drain_stream(settings, "record-paths", budget=0.5)
    wait_for(lambda: watcher.logs())
    live = watcher.logs()[0]
    watcher.close()
    assert live["stream_id"] == answer.json["ids"][0]
    _same_everywhere({"WS live": live, **_views(live_server, live["id"], live["id"] - 1)})
