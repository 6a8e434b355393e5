"""Idempotency-Key on POST /data/fast and POST /data/: a retry stores nothing twice and
is answered as the first request was; the same key with another request is a 422."""

from __future__ import annotations

import threading

import orjson
import pytest
import requests

from app.pipeline import counters, idempotency
from tests.helpers import count_logs

BODY = orjson.dumps([{"message": "a"}, {"level": "x"}, {"message": "b"}])


def send(client, url, key, body=BODY, content_type="application/json"):
    headers = {idempotency.HEADER: key} if key else {}
    return client.post(url, data=body, content_type=content_type, headers=headers)


@pytest.mark.parametrize(
    ("url", "status"), [("/data/fast", 202), ("/data/", 201)], ids=["fast", "sync"]
)
def test_a_retry_is_answered_as_the_first_time(client, r, settings, db, url, status):
    first = send(client, url, "retry-1")
    again = send(client, url, "retry-1")
    assert first.status_code == again.status_code == status
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert first.json["rejected"][0]["index"] == 1
    stored = r.xlen(settings.stream_name) if url == "/data/fast" else count_logs(db)
    assert stored == 2


@pytest.mark.parametrize("url", ["/data/fast", "/data/"], ids=["fast", "sync"])
def test_the_same_key_with_another_body_is_422(client, url):
    assert send(client, url, "k").status_code in (201, 202)
    response = send(client, url, "k", body=orjson.dumps({"message": "something else"}))
    assert response.status_code == 422
    assert response.json["error"] == "idempotency_key_reused"
    assert idempotency.HEADER in response.json["fields"]


@pytest.mark.parametrize("url", ["/data/fast", "/data/"], ids=["fast", "sync"])
def test_text_lines_are_idempotent_too(client, r, settings, db, url):
    for _ in range(3):
        response = send(client, url, "lines", b"one\ntwo", "text/plain")
        assert response.status_code in (201, 202)
    stored = r.xlen(settings.stream_name) if url == "/data/fast" else count_logs(db)
    assert stored == 2


def test_keys_are_kept_a_day_under_the_prefix(client, r, settings):
    send(client, "/data/fast", "ttl")
    send(client, "/data/", "ttl")  # another endpoint: another key
    for endpoint in ("fast", "sync"):
        key = idempotency.redis_key(settings, endpoint, "ttl")
        assert key.startswith(settings.key_prefix + ":")
        assert 86_000 < r.ttl(key) <= 86_400


def test_without_a_key_every_request_is_new(client, r, settings):
    send(client, "/data/fast", None)
    send(client, "/data/fast", None)
    assert r.xlen(settings.stream_name) == 4


@pytest.mark.parametrize("key", [" ", "x" * 256, "caf\u00e9", "a\tb"])
def test_a_bad_key_is_400_naming_the_header(client, key):
    response = send(client, "/data/fast", key)
    assert response.status_code == 400
    assert response.json["error"] == "bad_idempotency_key"
    assert idempotency.HEADER in response.json["fields"]


def test_retries_are_counted_not_enqueued(client, r, settings):
    send(client, "/data/fast", "count")
    send(client, "/data/fast", "count")
    totals = counters.totals(r, settings)
    assert totals["ingest_accepted"] == 2
    assert totals["ingest_retries_skipped"] == 2


@pytest.mark.parametrize("url", ["/data/fast", "/data/"], ids=["fast", "sync"])
def test_concurrent_retries_store_once(live_server, r, settings, db, url):
    body = orjson.dumps([{"message": f"m{i}"} for i in range(200)])
    answers = []
    start = threading.Barrier(8)

    def retry():
        start.wait()
        answers.append(
            requests.post(
                f"http://{live_server}{url}",
                data=body,
                headers={"Content-Type": "application/json", idempotency.HEADER: "race"},
                timeout=30,
            )
        )

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = r.xlen(settings.stream_name) if url == "/data/fast" else count_logs(db)
    assert stored == 200
    done = [a for a in answers if a.status_code in (201, 202)]
    assert done, [a.status_code for a in answers]
    assert len({a.content for a in done}) == 1
    # /data/ answers a retry that arrives while the first is storing with 409.
    assert {a.status_code for a in answers} <= {201, 202, 409}


def test_a_failed_store_releases_the_key(app, client, settings, db):
    app.extensions["sluice"] = settings.with_overrides(
        database_url="postgresql+psycopg2://postgres@127.0.0.1:1/gone"
    )
    assert send(client, "/data/", "release").status_code == 503
    app.extensions["sluice"] = settings
    assert send(client, "/data/", "release").status_code == 201
    assert count_logs(db) == 2


def test_a_kept_answer_is_small(client, r, settings):
    body = orjson.dumps([{"message": f"m{i}"} for i in range(5000)])
    first = send(client, "/data/fast", "big", body)
    assert len(first.json["ids"]) == 5000
    kept = r.get(idempotency.redis_key(settings, "fast", "big"))
    # One run (millisecond, first sequence, count) per millisecond the XADDs spanned, not
    # 5,000 ids: a few on a fast machine, more on a slow one, each a few dozen bytes.
    runs = orjson.loads(kept)["runs"]
    assert len(runs) == len({i.split("-")[0] for i in first.json["ids"]}) < 100
    assert len(kept) < 200 + 40 * len(runs) < len(orjson.dumps(first.json["ids"])) / 10
    assert send(client, "/data/fast", "big", body).get_data() == first.get_data()
