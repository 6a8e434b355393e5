"""Hostile input against a running Sluice with keys (issue 9): the bugs it found, each
pinned by a test."""

from __future__ import annotations

import threading
import uuid

import cramjam
import orjson
import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from app import create_app
from tests.hostile import client, run
from tests.receivers.lokiproto import push_request
from tests.stack import Stack


@pytest.fixture
def keyed(settings):
    """This test's settings with keys for every scope, and no rate limit in the way."""
    return settings.with_overrides(**run.KEY_SETTINGS, ingest_rate_limit="1000000/second")


@pytest.fixture
def served(keyed):
    """The keyed app over real HTTP (threaded werkzeug): its port."""
    server = make_server("127.0.0.1", 0, create_app(keyed), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def _raw(port: int, path: str, headers: list, body: bytes) -> client.Answer:
    base = [(b"Host", b"127.0.0.1:%d" % port), (b"Connection", b"close")]
    return client.send("127.0.0.1", port, client.head("POST", path, base + headers), body)


FACE_TYPES = [
    ("/data/fast", b"application/json"),
    ("/data/", b"application/x-ndjson"),
    ("/heroku/logs", b"application/logplex-1"),
    ("/loki/api/v1/push", b"application/x-protobuf"),
    ("/_bulk", b"application/x-ndjson"),
    ("/v1/logs", b"application/json"),
]


@pytest.mark.parametrize(
    "credential",
    [b"Basic \xff\xfe", b"Basic \xc3\xa9t\xc3\xa9", b"ApiKey \xe2\x80\xa8", b"Basic =\x00"],
)
def test_a_credential_that_is_not_ascii_is_401_not_500(served, credential):
    # Found by the hostile run: base64 of a non-ASCII str raised ValueError (a 500).
    for path, content_type in FACE_TYPES:
        headers = [(b"Content-Type", content_type), (b"Authorization", credential)]
        answer = _raw(served, path, [*headers, (b"Content-Length", b"2")], b"{}")
        assert answer.status == 401, (path, answer.status, answer.body)


def test_a_bad_chunked_body_is_400_on_every_face_through_gunicorn(keyed, tmp_path):
    # Found by the hostile run: gunicorn raises InvalidChunkSize (an OSError) from the
    # body's read, which was a 500 on every face.
    stack = Stack(keyed, tmp_path, WEB_CONCURRENCY="1").start("web")
    try:
        for path, content_type in FACE_TYPES:
            headers = [
                (b"Content-Type", content_type),
                (b"Authorization", b"Bearer " + run.INGEST.encode()),
                (b"Transfer-Encoding", b"chunked"),
            ]
            answer = _raw(stack.port, path, headers, b"zz\r\n{}\r\n0\r\n\r\n")
            assert answer.status == 400, (path, answer.status, answer.body, stack.tail())
    finally:
        stack.stop_all()


@pytest.mark.parametrize("ns", [10**23, -(10**23), 253402300800 * 10**9, -62135596801 * 10**9])
def test_a_loki_entry_outside_years_1_to_9999_is_kept_at_its_received_time(
    served, keyed, r, db, ns
):
    # Found by the hostile run: the timestamp overflowed datetime in the decoder (a 500
    # that lost the push's other entries). Now stored at its received time, the sent
    # value kept, like any time outside the window (README "Limits").
    tag = uuid.uuid4().hex[:8]
    line = f"loki-range-{tag}"
    json_body = orjson.dumps({"streams": [{"stream": {"app": "a"}, "values": [[str(ns), line]]}]})
    proto_body = cramjam.snappy.compress_raw(push_request([('{app="a"}', [(ns, line, {})])]))
    for content_type, body in (
        (b"application/json", json_body),
        (b"application/x-protobuf", bytes(proto_body)),
    ):
        headers = [
            (b"Content-Type", content_type),
            (b"Authorization", b"Bearer " + run.INGEST.encode()),
            (b"Content-Length", b"%d" % len(body)),
        ]
        answer = _raw(served, "/loki/api/v1/push", headers, body)
        assert answer.status == 204, (content_type, answer.status, answer.body)
    run.drain_all(keyed, r)
    db.rollback()
    rows = db.execute(
        text("SELECT timestamp, metadata FROM logs WHERE message = :m"), {"m": line}
    ).all()
    assert len(rows) == 2
    for stamp, metadata in rows:
        assert 2000 < stamp.year < 9999
        assert metadata["original_timestamp"], metadata
