"""GET /health and GET /queue/status against live and dead dependencies."""

from __future__ import annotations

import time

from app import __version__
from app.pipeline import stream
from app.web.status import persistence
from tasks.drain import drain_stream


def test_health_when_all_is_well(client, r):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json
    # A Redis that keeps nothing on disk (the test server) is "degraded" (tests/test_health.py).
    volatile = persistence(r) == {"aof": "off", "rdb": "off"}
    assert body["status"] == ("degraded" if volatile else "healthy")
    assert body["api"] == "ok"
    assert body["redis"] == "ok"
    assert body["database"] == "ok"
    assert body["websocket_connections"] == 0
    assert body["version"] == __version__


def test_health_reports_the_database_down(app, client, settings):
    app.extensions["sluice"] = settings.with_overrides(
        database_url="postgresql+psycopg2://postgres@127.0.0.1:1/gone"
    )
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json["status"] == "unhealthy"
    assert response.json["database"].startswith("down")
    assert response.json["redis"] == "ok"


def test_health_reports_redis_down(app, client, settings):
    app.extensions["sluice"] = settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json["redis"].startswith("down")
    assert response.json["database"] == "ok"


def test_queue_status_before_and_after_a_drain(client, r, settings):
    client.post(
        "/data/fast",
        data=b'[{"message":"a"},{"message":"b"},{"message":"c"}]',
        content_type="application/json",
    )
    stream.ensure_group(r, settings)
    before = client.get("/queue/status").json
    assert before["queue_name"] == settings.stream_name
    assert before["length"] == 3
    assert before["lag"] == 3
    assert before["pending_messages"] == 0
    assert before["consumer_groups"][0]["name"] == "workers"
    assert before["last_message_id"]
    assert before["dead_letters"] == 0
    r.xreadgroup(settings.consumer_group, "peek", {settings.stream_name: ">"}, count=1)
    mid = client.get("/queue/status").json
    assert (mid["lag"], mid["pending_messages"]) == (2, 1)
    assert {c["name"] for c in mid["consumers"]} == {"peek"}
    time.sleep(0.15)  # let the peeked entry go idle, so the drainer claims it
    drain_stream(settings.with_overrides(claim_idle_ms=100), "drainer", budget=0.5)
    after = client.get("/queue/status").json
    assert (after["lag"], after["pending_messages"]) == (0, 0)


def test_queue_status_with_no_stream_yet(client):
    body = client.get("/queue/status").json
    assert body["length"] == 0
    assert body["consumer_groups"] == []


def test_metrics_count_every_outcome(client, r, settings):
    client.post("/data/fast", json=[{"message": "a"}, {"message": "b"}, {"level": "x"}])
    client.post("/data/fast", json=[{"nope": 1}])
    stream.ensure_group(r, settings)
    r.xadd(settings.stream_name, {"d": b"{broken"})
    drain_stream(settings, "c1", budget=0.3)
    text = client.get("/metrics").get_data(as_text=True)
    expected = {
        "sluice_ingest_accepted_total": 2.0,
        "sluice_ingest_rejected_total": 2.0,
        "sluice_drain_stored_total": 2.0,
        "sluice_drain_dead_letters_total": 1.0,
        "sluice_queue_pending_messages": 0.0,
        "sluice_queue_dead_letters": 1.0,
    }
    values = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    for name, value in expected.items():
        assert float(values[name]) == value, name
