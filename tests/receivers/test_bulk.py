"""Elasticsearch `_bulk` with the real `elasticsearch` client, and the `GET /` banner."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from elasticsearch import Elasticsearch, helpers


def es(server: str) -> Elasticsearch:
    return Elasticsearch(f"http://{server}", request_timeout=10)


def test_helpers_bulk_with_a_refused_item(live_server, rows):
    actions = [
        {
            "_op_type": "create",
            "_index": "logs-web",
            "@timestamp": "2026-11-28T10:00:00.250Z",
            "message": "GET /health 200",
            "log": {"level": "warn", "logger": "access"},
            "host": {"name": "web-1", "ip": "10.0.0.1"},
            "service": {"name": "frontend"},
        },
        {"_index": "logs-web", "_id": "abc", "message": "plain", "log.level": "ERROR"},
        {"_op_type": "create", "_index": "logs-web", "message": "bad", "log.level": "loud"},
    ]
    ok, errors = helpers.bulk(es(live_server), actions, raise_on_error=False)
    assert ok == 2
    (refused,) = errors
    assert refused["create"]["status"] == 400
    assert "Unknown level" in refused["create"]["error"]["reason"]
    first, second = rows()
    assert first["timestamp"] == datetime(2026, 11, 28, 10, 0, 0, 250000, tzinfo=UTC)
    assert (first["level"], first["source"], first["application"]) == ("WARN", "web-1", "frontend")
    assert first["message"] == "GET /health 200"
    assert first["metadata"] == {
        "log": {"logger": "access"},
        "host": {"ip": "10.0.0.1"},
        "_index": "logs-web",
        "format": "bulk",
    }
    assert (second["level"], second["source"], second["application"]) == ("ERROR", None, None)
    assert second["message"] == "plain"
    assert second["metadata"] == {"_index": "logs-web", "_id": "abc", "format": "bulk"}
    assert second["timestamp"] is not None  # the moment Redis took it


def test_action_without_source_costs_only_itself(client, rows):
    body = b"\n".join(
        [
            b'{"index": {"_index": "a"}}',
            b'{"index": {"_index": "a"}}',
            b'{"message": "after the orphan"}',
            b'{"delete": {"_id": "1"}}',
            b'{"create": {}}',
        ]
    )
    response = client.post("/x/_bulk", data=body + b"\n", content_type="application/x-ndjson")
    assert response.status_code == 200
    assert response.headers["X-Elastic-Product"] == "Elasticsearch"
    answer = response.get_json()
    assert answer["errors"] is True
    statuses = [next(iter(i.items())) for i in answer["items"]]
    assert [(op, item["status"]) for op, item in statuses] == [
        ("index", 400),
        ("index", 201),
        ("delete", 400),
        ("create", 400),
    ]
    assert "no source line" in statuses[0][1]["error"]["reason"]
    (row,) = rows()
    assert row["message"] == "after the orphan"
    assert row["metadata"]["_index"] == "a"


def test_queue_full_is_429_per_item_and_the_retry_stores_once(app, live_server, settings, rows):
    app.extensions["sluice"] = settings.with_overrides(stream_maxlen=1)
    docs = [{"_index": "i", "message": f"m{i}"} for i in range(3)]
    ok, errors = helpers.bulk(es(live_server), docs, raise_on_error=False, max_retries=0)
    assert ok == 0
    assert [e["index"]["status"] for e in errors] == [429, 429, 429]
    app.extensions["sluice"] = settings
    ok, errors = helpers.bulk(es(live_server), docs, raise_on_error=False)
    assert (ok, errors) == (3, [])
    assert sorted(r["message"] for r in rows()) == ["m0", "m1", "m2"]


def test_gzip_bulk(client, rows):
    import gzip

    body = b'{"index": {}}\n{"message": "zipped", "service.name": "s"}\n'
    response = client.post(
        "/logs/_bulk",
        data=gzip.compress(body),
        headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
    )
    assert response.get_json()["errors"] is False
    (row,) = rows()
    assert (row["message"], row["application"], row["metadata"]["_index"]) == (
        "zipped",
        "s",
        "logs",
    )


def test_root_answers_like_elasticsearch_8_unless_a_browser_asks(live_server, client):
    info = es(live_server).info()
    assert info["version"]["number"].startswith("8.")
    banner = client.get("/", headers={"Accept": "application/json"})
    assert banner.headers["X-Elastic-Product"] == "Elasticsearch"
    assert orjson.loads(banner.data)["tagline"] == "You Know, for Search"
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.mimetype == "text/html"
    assert "X-Elastic-Product" not in page.headers
