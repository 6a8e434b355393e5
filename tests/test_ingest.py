"""POST /data/fast and POST /data/: bodies, per-item validation, errors, back-pressure."""

from __future__ import annotations

import orjson
import pytest

from app.pipeline import stream
from app.pipeline.connections import redis_client
from tests.helpers import count_logs


def entries(r, settings):
    return r.xrange(settings.stream_name)


def post_json(client, url, body, **kw):
    return client.post(url, data=orjson.dumps(body), content_type="application/json", **kw)


@pytest.mark.parametrize(
    ("content_type", "body", "count"),
    [
        ("application/json", b'{"message": "one"}', 1),
        ("application/json", b'[{"message": "a"}, {"message": "b"}]', 2),
        ("application/x-ndjson", b'{"message": "a"}\n\n{"message": "b"}\n', 2),
        ("text/plain", b"line one\nline two\n\nline three", 3),
    ],
)
def test_fast_accepts_every_body_kind(client, r, settings, content_type, body, count):
    response = client.post("/data/fast", data=body, content_type=content_type)
    assert response.status_code == 202, response.json
    assert response.json["accepted"] == count
    assert len(response.json["ids"]) == count
    assert [e[0].decode() for e in entries(r, settings)] == response.json["ids"]


def test_fast_normalises_before_queueing(client, r, settings):
    post_json(
        client,
        "/data/fast",
        {
            "message": "m",
            "level": "warning",
            "timestamp": 1700000000000,
            "user_id": 7,
            "metadata": {"a": {"b": 1}},
        },
    )
    ((_, fields),) = entries(r, settings)
    queued = orjson.loads(fields[b"d"])
    assert queued["level"] == "WARN"
    assert queued["timestamp"] == "2023-11-14T22:13:20+00:00"
    assert queued["metadata"] == {"user_id": 7, "a": {"b": 1}}


def test_fast_partial_batch_lists_rejects_by_index(client, r, settings):
    body = [
        {"message": "ok"},
        {"level": "INFO"},
        {"message": "x", "level": "loud"},
        {"message": "fine", "timestamp": "yesterday"},
        "not an object",
        {"message": "ok2"},
    ]
    response = post_json(client, "/data/fast", body)
    assert response.status_code == 202
    assert response.json["accepted"] == 2
    rejected = {r["index"]: r["errors"] for r in response.json["rejected"]}
    assert set(rejected) == {1, 2, 3, 4}
    assert "message" in rejected[1]
    assert "level" in rejected[2]
    assert "timestamp" in rejected[3]
    assert "_schema" in rejected[4]
    assert len(entries(r, settings)) == 2


def test_fast_all_invalid_is_422_with_every_reject(client, r, settings):
    response = post_json(client, "/data/fast", [{"message": ""}, {"message": "a\x00b"}])
    assert response.status_code == 422
    assert response.json["error"] == "validation_error"
    assert [x["index"] for x in response.json["rejected"]] == [0, 1]
    assert entries(r, settings) == []


def test_ndjson_bad_line_is_rejected_alone(client):
    body = b'{"message": "a"}\n{not json\n{"message": "c"}\n'
    response = client.post("/data/fast", data=body, content_type="application/x-ndjson")
    assert response.status_code == 202
    assert response.json["accepted"] == 2
    assert response.json["rejected"][0]["index"] == 1


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": b"{oops", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": b"[]", "content_type": "application/json"}, 400, "empty_body"),
        ({"data": b"<xml/>", "content_type": "application/xml"}, 415, "unsupported_media_type"),
    ],
)
def test_fast_bad_bodies(client, kwargs, status, code):
    response = client.post("/data/fast", **kwargs)
    assert response.status_code == status
    assert response.json["error"] == code
    assert response.json["status"] == status
    assert response.json["message"]


def test_batch_over_max_is_413(app, client, settings):
    app.extensions["sluice"] = settings.with_overrides(max_batch=3)
    response = post_json(client, "/data/fast", [{"message": "x"}] * 4)
    assert response.status_code == 413
    assert response.json["error"] == "batch_too_large"


def test_body_over_max_content_length_is_413_json(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/data/fast", data=b"x" * 4096, content_type="text/plain")
    assert response.status_code == 413
    assert response.json["error"] == "request_entity_too_large"


def test_unknown_route_and_method_use_the_error_shape(client):
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json["error"] == "not_found"
    wrong = client.get("/data/fast")
    assert wrong.status_code == 405
    assert wrong.json["error"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_queue_full_is_429_and_nothing_is_trimmed(app, client, r, settings):
    app.extensions["sluice"] = settings.with_overrides(stream_maxlen=5)
    assert post_json(client, "/data/fast", [{"message": "x"}] * 5).status_code == 202
    response = post_json(client, "/data/fast", {"message": "one too many"})
    assert response.status_code == 429
    assert response.headers["Retry-After"]
    assert response.json["error"] == "queue_full"
    assert len(entries(r, settings)) == 5


def test_redis_down_is_503_with_retry_after(app, client, settings):
    app.extensions["sluice"] = settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    response = post_json(client, "/data/fast", {"message": "x"})
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json["error"] == "redis_unavailable"


def test_text_with_unknown_format_is_400(client):
    response = client.post("/data/fast?format=klingon", data=b"x", content_type="text/plain")
    assert response.status_code == 400
    assert "format" in response.json["fields"]


def test_sync_stores_and_returns_ids(client, db, settings, r):
    pubsub = redis_client(settings.redis_url).pubsub()
    pubsub.subscribe(settings.pubsub_channel)
    pubsub.get_message(timeout=1)
    response = post_json(
        client,
        "/data/",
        {"message": "stored now", "level": "err", "source": "api", "application": "billing"},
    )
    assert response.status_code == 201, response.json
    log_id = response.json["id"]
    row = db.execute(
        __import__("sqlalchemy").text("SELECT level, source, message FROM logs WHERE id = :i"),
        {"i": log_id},
    ).one()
    assert tuple(row) == ("ERROR", "api", "stored now")
    message = pubsub.get_message(timeout=2)
    assert orjson.loads(message["data"])["logs"][0]["id"] == log_id
    pubsub.close()


def test_sync_batch_partial(client, db):
    response = post_json(client, "/data/", [{"message": "a"}, {"nope": 1}, {"message": "c"}])
    assert response.status_code == 201
    assert response.json["stored"] == 2
    assert response.json["rejected"][0]["index"] == 1
    assert count_logs(db) == 2


def test_sync_database_down_is_503(app, client, settings):
    app.extensions["sluice"] = settings.with_overrides(
        database_url="postgresql+psycopg2://postgres@127.0.0.1:1/nope"
    )
    response = post_json(client, "/data/", {"message": "x"})
    assert response.status_code == 503
    assert response.json["error"] == "database_unavailable"


def test_enqueue_is_atomic_against_the_cap(r, settings):
    capped = settings.with_overrides(stream_maxlen=3)
    stream.enqueue(r, capped, (b"d",), [b"{}", b"{}"])
    with pytest.raises(stream.QueueFull):
        stream.enqueue(r, capped, (b"d",), [b"{}", b"{}"])
    assert r.xlen(settings.stream_name) == 2


def test_numbers_beyond_64_bits_are_stored_and_published(client, db, settings):
    """jsonb keeps 1e20 exactly and hands back the integer 10**20: still served as JSON."""
    pubsub = redis_client(settings.redis_url).pubsub()
    pubsub.subscribe(settings.pubsub_channel)
    pubsub.get_message(timeout=1)
    response = post_json(client, "/data/", {"message": "big", "metadata": {"n": 1e20}})
    assert response.status_code == 201
    message = pubsub.get_message(timeout=2)
    assert orjson.loads(message["data"])["logs"][0]["metadata"]["n"] == 10**20
    pubsub.close()
