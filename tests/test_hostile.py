"""Hostile input against a running Sluice with keys: no 5xx, no valid log lost or doubled,
no item failed by a neighbour (issue 9).

Hypothesis draws each request: a face (`/data/fast` and `/data/` as JSON, NDJSON and
text/plain; Heroku, Loki JSON and protobuf+snappy, `_bulk`, OTLP JSON and protobuf), a mix
of valid logs (each with a unique marker) and hostile items (NUL, invalid UTF-8, lone
surrogates, U+2028, 10 MB lines, 1,000-deep JSON, 10**400, -2**70, years 0 and 9999, in
every field), a body encoding (identity, gzip, deflate), a key (valid ones presented four
ways, and missing, wrong-scope or malformed ones) and header noise (CR/LF/NUL in values,
folded, oversized and many headers, bad or lying Content-Encoding and Content-Length,
chunked bodies, Idempotency-Key retries). Requests go over raw sockets, so nothing is
sanitised on the way. After the run the stream is drained with the real drain and every
valid log an answer acknowledged must be in `logs` exactly once, with no dead letter
carrying a valid log or blaming its chunk.

HOSTILE_EXAMPLES (default 2,000) is the number of requests drawn per run, shared between
an in-process threaded server and gunicorn (the Procfile's web process); `make hostile`
runs 10,000.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid

import cramjam
import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text
from werkzeug.serving import make_server

from app import create_app
from tests.hostile import client, payloads, run
from tests.hostile.payloads import FACES, FIELDS, Hostile, values_for
from tests.receivers.lokiproto import push_request
from tests.stack import Stack

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "2000"))
# The share of the requests sent to gunicorn; the rest go to the in-process server.
GUNICORN_SHARE = 0.4


def _requests(face: str):
    hostile = st.builds(Hostile, st.sampled_from(values_for(face)), st.sampled_from(FIELDS))
    return st.tuples(
        st.just(face),
        st.lists(st.one_of(st.none(), hostile), min_size=1, max_size=8),
        st.sampled_from(("identity", "gzip", "deflate")),
        st.sampled_from(run.MODES),
        st.sampled_from(run.AUTHS),
    )


REQUESTS = st.sampled_from(FACES).flatmap(_requests)


def _one_huge(items: list) -> list:
    """At most one 10 MB item per request (two would be past MAX_CONTENT_LENGTH, which
    refuses the request as a whole: a limit, tested in tests/test_limits.py)."""
    seen, out = False, []
    for item in items:
        if item is not None and item.value == "huge_10mb":
            if seen:
                item = Hostile("long_70k", item.where)
            seen = True
        out.append(item)
    return out


def hostile_run(port: int, settings, db, r, examples: int) -> tuple[run.Ledger, dict]:
    """Send `examples` drawn requests to the server on `port`, drain, check the ledger."""
    ledger, tag, count = run.Ledger(), uuid.uuid4().hex[:8], [0]

    @given(REQUESTS)
    @hsettings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=["generate"],  # the server keeps state: replaying shrunk cases proves little
    )
    def one(request):
        face, items, encoding, mode, auth = request
        built = payloads.build(face, _one_huge(items), tag, count[0])
        count[0] += len(built.valid)
        run.send(ledger, port, built, encoding, mode, auth, settings.max_content_length)

    while ledger.requests < examples:  # Hypothesis skips examples it has already run
        one()
    run.drain_all(settings, r)
    counts = run.check_stored(ledger, settings, db, r, tag)
    return ledger, counts


def _report(name: str, ledger: run.Ledger, counts: dict) -> str:
    line = (
        f"hostile[{name}]: {ledger.requests} requests, statuses {dict(ledger.statuses)},"
        f" {len(ledger.acked)} valid logs acknowledged, {counts['stored_valid']} stored,"
        f" {counts['dead_letters']} dead letters"
    )
    print(line, file=sys.stderr)
    return line


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


def test_hostile_requests_in_process(served, keyed, db, r):
    examples = EXAMPLES - int(EXAMPLES * GUNICORN_SHARE)
    ledger, counts = hostile_run(served, keyed, db, r, examples)
    line = _report("werkzeug", ledger, counts)
    assert ledger.requests >= examples, line
    assert ledger.acked, line
    assert not ledger.problems, "\n".join([line, *ledger.problems[:40]])


def test_hostile_requests_through_gunicorn(keyed, db, r, tmp_path):
    stack = Stack(keyed, tmp_path, WEB_CONCURRENCY="2").start("web")
    try:
        examples = int(EXAMPLES * GUNICORN_SHARE)
        ledger, counts = hostile_run(stack.port, keyed, db, r, examples)
    finally:
        stack.stop_all()
    line = _report("gunicorn", ledger, counts)
    assert ledger.requests >= examples, line
    assert ledger.acked, line
    assert not ledger.problems, "\n".join([line, *ledger.problems[:40], stack.tail(40)])


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


def test_a_loki_entry_with_nested_structured_metadata_is_refused_alone(served, keyed, r, db):
    # Found by the hostile run through gunicorn: str() of a 1,000-deep value in structured
    # metadata raised RecursionError, a 500 that cost the push's other entries.
    tag = uuid.uuid4().hex[:8]
    deep = b"[" * 1000 + b"]" * 1000
    body = (
        b'{"streams":[{"stream":{"app":"a"},"values":[["%d","kept-%s"],["%d","x",{"k":%s}]]}]}'
        % (time.time_ns(), tag.encode(), time.time_ns(), deep)
    )
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Authorization", b"Bearer " + run.INGEST.encode()),
        (b"Content-Length", b"%d" % len(body)),
    ]
    answer = _raw(served, "/loki/api/v1/push", headers, body)
    assert answer.status == 400, (answer.status, answer.body)
    assert b"1 of 2 entries rejected" in answer.body and b"entry 1:" in answer.body
    run.drain_all(keyed, r)
    db.rollback()
    stored = db.execute(text("SELECT count(*) FROM logs WHERE message = :m"), {"m": f"kept-{tag}"})
    assert stored.scalar() == 1


def test_a_loki_entry_whose_timestamp_nests_deep_is_refused_alone(served, keyed):
    deep = b"[" * 1000 + b"]" * 1000
    body = b'{"streams":[{"stream":{"app":"a"},"values":[["%d","ok"],[%s,"x"]]}]}' % (
        time.time_ns(),
        deep,
    )
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Authorization", b"Bearer " + run.INGEST.encode()),
        (b"Content-Length", b"%d" % len(body)),
    ]
    answer = _raw(served, "/loki/api/v1/push", headers, body)
    assert answer.status == 400 and b"entry 1: " in answer.body, (answer.status, answer.body)


@pytest.mark.parametrize(
    "resource",
    [
        b'{"scopeLogs":[{"logRecords":[{"body":' + b"[" * 1000 + b"]" * 1000 + b"}]}]}",
        b'{"scopeLogs":[[1]]}',
    ],
    ids=["nested-1000", "scope-not-an-object"],
)
def test_an_otlp_json_resource_that_cannot_be_read_is_damage_not_a_500(
    served, keyed, r, db, resource
):
    # Found by the hostile run through gunicorn: protobuf's ParseDict of a 1,000-deep
    # body raised RecursionError (and a scopeLogs entry that is not an object raised
    # AttributeError), a 500 that cost the request's other resources.
    tag = uuid.uuid4().hex[:8]
    kept = b'{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"kept-%s"}}]}]}' % tag.encode()
    body = b'{"resourceLogs":[' + kept + b"," + resource + b"]}"
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Authorization", b"Bearer " + run.INGEST.encode()),
        (b"Content-Length", b"%d" % len(body)),
    ]
    answer = _raw(served, "/v1/logs", headers, body)
    assert answer.status == 400 and b"1 records before it were kept" in answer.body, answer
    run.drain_all(keyed, r)
    db.rollback()
    stored = db.execute(text("SELECT count(*) FROM logs WHERE message = :m"), {"m": f"kept-{tag}"})
    assert stored.scalar() == 1
