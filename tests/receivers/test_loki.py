"""Loki push with real clients: python-logging-loki (JSON) and a protobuf + snappy push."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import cramjam
import logging_loki
import orjson
import requests

from tests.receivers.lokiproto import push_request


def test_python_logging_loki_json_push(live_server, rows):
    handler = logging_loki.LokiHandler(
        url=f"http://{live_server}/loki/api/v1/push",
        tags={"app": "billing", "host": "web-1"},
        version="1",
    )
    logger = logging.getLogger("sluice.test.loki")
    logger.propagate = False
    logger.addHandler(handler)
    before = datetime.now(UTC)
    try:
        logger.warning("card declined for order %s", 1234)
    finally:
        logger.removeHandler(handler)
    (row,) = rows()
    assert before.timestamp() - 1 <= row["timestamp"].timestamp() <= time.time() + 1
    assert (row["level"], row["source"], row["application"]) == ("WARN", "web-1", "billing")
    assert row["message"] == "card declined for order 1234"
    labels = {"app": "billing", "host": "web-1", "severity": "warning", "logger": logger.name}
    assert row["metadata"] == {"labels": labels, "format": "loki"}


def test_protobuf_snappy_push(live_server, rows):
    body = push_request(
        [
            (
                '{service_name="checkout", instance="10.0.0.7:80", env="prod"}',
                [
                    (1764324000123456789, "payment ok", {"trace_id": "4bf92f35", "level": "debug"}),
                    (1764324001000000000, 'quoted "line"', {}),
                ],
            ),
            ('{job="cron"}', [(1764324002000000000, "nightly run", {"detected_level": "error"})]),
        ]
    )
    response = requests.post(
        f"http://{live_server}/loki/api/v1/push",
        data=bytes(cramjam.snappy.compress_raw(body)),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert response.status_code == 204, response.text
    first, second, third = rows()
    assert first["timestamp"] == datetime(2025, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)
    assert (first["level"], first["source"], first["application"]) == (
        "DEBUG",
        "10.0.0.7:80",
        "checkout",
    )
    assert first["message"] == "payment ok"
    labels = {"service_name": "checkout", "instance": "10.0.0.7:80", "env": "prod"}
    assert first["metadata"] == {
        "labels": labels,
        "structured_metadata": {"trace_id": "4bf92f35", "level": "debug"},
        "format": "loki",
    }
    assert second["timestamp"] == datetime(2025, 11, 28, 10, 0, 1, tzinfo=UTC)
    assert (second["level"], second["message"]) == ("INFO", 'quoted "line"')
    assert second["metadata"] == {"labels": labels, "format": "loki"}
    assert (third["level"], third["application"], third["source"]) == ("ERROR", "cron", None)
    assert third["metadata"]["structured_metadata"] == {"detected_level": "error"}


def test_gzip_json_push_and_string_timestamps(client, rows):
    body = {"streams": [{"stream": {"app": "a"}, "values": [["1764324000000000001", "gz"]]}]}
    response = client.post(
        "/loki/api/v1/push",
        data=bytes(cramjam.gzip.compress(orjson.dumps(body))),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 204
    (row,) = rows()
    assert (row["message"], row["application"]) == ("gz", "a")
    assert row["timestamp"] == datetime(2025, 11, 28, 10, 0, tzinfo=UTC)


def test_truncated_protobuf_is_400_and_keeps_the_complete_streams(client, rows):
    body = push_request(
        [('{app="kept"}', [(1764324000000000000, "kept", {})]), ('{app="cut"}', [(1, "cut", {})])]
    )
    response = client.post(
        "/loki/api/v1/push",
        data=bytes(cramjam.snappy.compress_raw(body[:-3])),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert "1 of 2 entries rejected" in response.text
    assert [r["message"] for r in rows()] == ["kept"]


def test_bad_entry_is_400_alone(client, rows):
    values = [["1764324000000000000", "good"], ["soon", "bad stamp"], ["1764324000000000000", " "]]
    body = {"streams": [{"stream": {"app": "a"}, "values": values}]}
    response = client.post("/loki/api/v1/push", json=body)
    assert response.status_code == 400
    assert "2 of 3 entries rejected" in response.text
    assert [r["message"] for r in rows()] == ["good"]


def test_not_a_push_is_400(client):
    response = client.post("/loki/api/v1/push", data=b"{", content_type="application/json")
    assert response.status_code == 400
    assert response.text.startswith("error parsing push request")
    snappy_garbage = client.post(
        "/loki/api/v1/push", data=b"\x05garbage", content_type="application/x-protobuf"
    )
    assert snappy_garbage.status_code == 400


def test_queue_full_is_429_and_the_retry_stores_once(app, client, settings, rows):
    body = {"streams": [{"stream": {"app": "a"}, "values": [["1764324000000000000", "x"]] * 3}]}
    app.extensions["sluice"] = settings.with_overrides(stream_maxlen=2)
    refused = client.post("/loki/api/v1/push", json=body)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "5"
    app.extensions["sluice"] = settings
    assert client.post("/loki/api/v1/push", json=body).status_code == 204
    assert len(rows()) == 3


def test_probes_answer_like_loki(client):
    ready = client.get("/ready")
    assert (ready.status_code, ready.text) == (200, "ready\n")
    info = client.get("/loki/api/v1/status/buildinfo").get_json()
    assert info["version"].startswith("3.")
