"""Write-side limits: JSON nesting, the time window, the queue's bytes, Redis memory,
the dead-letter stream's bytes (issue 9)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app import create_app
from app.pipeline import counters, stream
from app.pipeline.record import (
    Limits,
    bound_timestamp,
    depth_error,
    raw_to_data,
    too_deep,
)
from app.pipeline.stream import Entry
from app.web.ingest import split_array
from tasks.drain import drain_stream
from tests.helpers import assert_quick_log_is_the_schema_or_nothing, count_logs
from tests.redisserver import redis_server

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_json_depth=32, max_future_seconds=86_400, retention_days=14)


def nested(depth: int, leaf=1):
    """A value `depth` containers deep: {"a": {"a": ... leaf}}."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_bytes(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def post_json(client, url, body, **kw):
    return client.post(url, data=body, content_type="application/json", **kw)


# --- nesting: the pure functions -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "limit", "where"),
    [
        ({}, 1, None),
        ({"a": 1}, 1, None),
        ({"a": {}}, 1, "a"),
        ({"a": {}}, 2, None),
        ([[[]]], 3, None),
        ([[[]]], 2, "0.0"),
        ({"m": {"x": [1, {"y": 2}]}}, 3, "m.x.1"),
        ({"m": {"x": [1, {"y": 2}]}}, 4, None),
        (nested(33), 32, ".".join(["a"] * 32)),
        (nested(32), 32, None),
    ],
)
def test_too_deep_names_the_first_container_past_the_limit(value, limit, where):
    assert too_deep(value, limit) == where


def depth_of(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=20,
)


@given(value=json_values, limit=st.integers(1, 8))
def test_too_deep_agrees_with_a_recursive_depth(value, limit):
    assume(isinstance(value, dict | list))
    assert (too_deep(value, limit) is None) == (depth_of(value) <= limit)


def test_depth_error_names_the_top_level_key():
    errors = depth_error({"message": "m", "metadata": nested(40)}, 32)
    assert list(errors) == ["metadata"]
    assert "MAX_JSON_DEPTH" in errors["metadata"][0]
    assert depth_error({"message": "m", "metadata": nested(30)}, 32) is None
    assert depth_error("a string", 32) is None


@pytest.mark.parametrize(
    ("body", "parts"),
    [
        (b"[]", []),
        (b" [ ] ", []),
        (b"[1]", [b"1"]),
        (b'[{"a":"],[{"}, 2]', [b'{"a":"],[{"}', b" 2"]),
        (b'[{"a":"\\"]"},[1,[2]]]', [b'{"a":"\\"]"}', b"[1,[2]]"]),
        (b"[1] x", None),
        (b'{"a":1}', None),
        (b"[1,2", None),
    ],
)
def test_split_array(body, parts):
    assert split_array(body) == parts


@given(st.lists(json_values, max_size=6))
def test_split_array_finds_each_element(values):
    parts = split_array(orjson.dumps(values))
    assert [orjson.loads(p) for p in parts] == values


# --- nesting: at ingest and in the drain ------------------------------------------------


def test_deep_item_is_refused_alone(client, r, settings):
    batch = [{"message": f"m{i}"} for i in range(100)]
    batch[40] = {"message": "deep", "metadata": nested(40)}
    response = post_json(client, "/data/fast", orjson.dumps(batch))
    assert response.status_code == 202, response.json
    assert response.json["accepted"] == 99
    ((reject),) = response.json["rejected"]
    assert reject["index"] == 40
    assert "MAX_JSON_DEPTH" in reject["errors"]["metadata"][0]
    assert r.xlen(settings.stream_name) == 99


def test_item_deeper_than_the_decoder_costs_no_neighbour(client, r, settings):
    # 1,100 levels: orjson refuses the whole body ("depth limit exceeded").
    items = [orjson.dumps({"message": f"m{i}"}) for i in range(100)]
    items[7] = b'{"message":"deep","metadata":' + nested_bytes(1100) + b"}"
    body = b"[" + b",".join(items) + b"]"
    for url, status in (("/data/fast", 202), ("/data/", 201)):
        response = post_json(client, url, body)
        assert response.status_code == status, response.json
        assert len(response.json["ids"]) == 99
        ((reject),) = response.json["rejected"]
        assert reject["index"] == 7
        assert "MAX_JSON_DEPTH" in reject["errors"]["_schema"][0]


def test_one_log_deeper_than_the_decoder_is_422_at_index_0(client):
    body = b'{"message":"deep","metadata":' + nested_bytes(1100) + b"}"
    response = post_json(client, "/data/fast", body)
    assert response.status_code == 422
    assert response.json["rejected"][0]["index"] == 0
    assert "MAX_JSON_DEPTH" in response.json["rejected"][0]["errors"]["_schema"][0]


def test_deep_ndjson_line_is_refused_alone(client, settings):
    body = b'{"message":"a"}\n' + nested_bytes(1100) + b'\n{"message":"b"}\n'
    response = client.post("/data/fast", data=body, content_type="application/x-ndjson")
    assert response.status_code == 202
    assert response.json["accepted"] == 2
    assert [x["index"] for x in response.json["rejected"]] == [1]


def test_a_setting_changes_the_depth(app, client, settings):
    app.extensions["sluice"] = settings.with_overrides(max_json_depth=3)
    ok = {"message": "m", "metadata": {"a": {"b": 1}}}
    deep = {"message": "m", "metadata": {"a": {"b": {"c": 1}}}}
    response = post_json(client, "/data/fast", orjson.dumps([ok, deep]))
    assert response.json["accepted"] == 1
    assert response.json["rejected"][0]["index"] == 1


def test_invalid_json_body_is_still_400(client):
    response = post_json(client, "/data/fast", b'[{"message": "a"}, {oops}')
    assert response.status_code == 400
    assert response.json["error"] == "invalid_json"


def test_raw_line_too_deep_is_kept_as_raw_text():
    line = '{"message":"m","x":' + nested_bytes(40).decode() + "}"
    data = raw_to_data(line, None, NOW, LIMITS)
    assert data["message"] == line
    assert data["metadata"]["format"] == "raw"
    assert "MAX_JSON_DEPTH" in data["metadata"]["not_parsed"]
    shallow = raw_to_data('{"message":"m","x":{"y":1}}', None, NOW, LIMITS)
    assert shallow["metadata"]["format"] == "json"


def test_drain_stores_deep_text_lines_with_their_neighbours(client, r, settings, db):
    deep = '{"message":"deep","x":' + nested_bytes(300).decode() + "}"
    lines = ["first line", deep, '{"message":"fine"}', "last line"]
    response = client.post("/data/fast", data="\n".join(lines), content_type="text/plain")
    assert response.json["accepted"] == 4
    stats = drain_stream(settings, "c1", budget=0.3)
    assert stats.stored == 4
    assert stats.dead == 0
    assert count_logs(db) == 4
    kept = count_logs(db, "message = :m AND metadata->>'format' = 'raw'", m=deep)
    assert kept == 1


# --- the time window ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "replaced"),
    [
        (None, False),
        (NOW, False),
        (NOW + timedelta(seconds=86_400), False),
        (NOW + timedelta(seconds=86_401), True),
        (NOW - timedelta(days=14), False),
        (NOW - timedelta(days=14, seconds=1), True),
        (datetime(9999, 12, 31, tzinfo=UTC), True),
        (datetime(1, 1, 1, tzinfo=UTC), True),
        (datetime(1970, 1, 1, tzinfo=UTC), True),
    ],
)
def test_bound_timestamp(timestamp, replaced):
    stored, original = bound_timestamp(timestamp, NOW, LIMITS)
    if timestamp is None:
        assert (stored, original) == (None, None)
    elif replaced:
        assert (stored, original) == (NOW, timestamp)
    else:
        assert (stored, original) == (timestamp, None)


@given(
    timestamp=st.datetimes(timezones=st.just(UTC)),
    future=st.integers(0, 10**7),
    days=st.integers(1, 3650),
)
def test_bound_timestamp_always_lands_in_the_window(timestamp, future, days):
    limits = Limits(32, future, days)
    stored, original = bound_timestamp(timestamp, NOW, limits)
    assert NOW - timedelta(days=days) <= stored <= NOW + timedelta(seconds=future)
    assert (original is None) == (stored == timestamp)
    assert original in (None, timestamp)


@pytest.fixture
def windowed(app, settings):
    """The app with the default window (the suite's settings widen it for old dates)."""
    narrow = settings.with_overrides(retention_days=14)
    app.extensions["sluice"] = narrow
    return narrow


def _count(r, settings, name):
    return counters.totals(r, settings)[name]


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", 1e11])
def test_out_of_window_time_is_kept_in_metadata(client, r, windowed, stamp):
    before = datetime.now(UTC)
    response = client.post("/data/fast", json=[{"message": "m", "timestamp": stamp}])
    assert response.status_code == 202
    ((_, fields),) = r.xrange(windowed.stream_name)
    queued = orjson.loads(fields[b"d"])
    assert datetime.fromisoformat(queued["timestamp"]) >= before - timedelta(seconds=1)
    assert queued["metadata"]["original_timestamp"].startswith(("9999", "0001", "1973"))
    assert _count(r, windowed, "ingest_timestamps_replaced") == 1


def test_sync_ingest_restamps_and_counts(client, r, db, windowed):
    response = client.post("/data/", json={"message": "m", "timestamp": "9999-01-01T00:00:00Z"})
    assert response.status_code == 201
    db.rollback()
    assert count_logs(db, "timestamp > now() + interval '1 day'") == 0
    assert count_logs(db, "metadata->>'original_timestamp' LIKE '9999-01-01%'") == 1
    assert _count(r, windowed, "ingest_timestamps_replaced") == 1
    assert "sluice_ingest_timestamps_replaced_total 1" in client.get("/metrics").text


def test_sync_text_lines_are_restamped_and_counted(client, r, db, windowed):
    lines = "<13>1 9999-01-01T00:00:00Z host app - - - far ahead\nplain line"
    response = client.post("/data/", data=lines, content_type="text/plain")
    assert response.status_code == 201
    assert count_logs(db, "metadata->>'original_timestamp' LIKE '9999%'") == 1
    assert _count(r, windowed, "ingest_timestamps_replaced") == 1


def test_drain_restamps_a_parsed_line():
    line = '{"message":"m","time":"9999-05-01T00:00:00Z"}'
    data = raw_to_data(line, None, NOW, LIMITS)
    assert data["timestamp"] == NOW
    assert data["metadata"]["original_timestamp"].startswith("9999-05-01")


def test_text_line_dated_9999_reaches_no_partition(client, settings, db):
    line = "<13>1 9999-01-01T00:00:00Z host app - - - dated far ahead"
    client.post("/data/fast", data=line, content_type="text/plain")
    assert drain_stream(settings, "c1", budget=0.3).stored == 1
    assert count_logs(db, "extract(year from timestamp) = 9999") == 0
    assert count_logs(db, "metadata->>'original_timestamp' LIKE '9999%'") == 1


# --- bytes in Redis ---------------------------------------------------------------------


def test_queue_full_by_bytes_is_429_with_retry_after(app, client, r, settings):
    capped = settings.with_overrides(queue_max_bytes=64 * 1024)
    app.extensions["sluice"] = capped
    big = [{"message": "x" * 1000} for _ in range(40)]
    assert client.post("/data/fast", json=big).status_code == 202
    response = client.post("/data/fast", json=big)
    assert response.status_code == 429
    assert response.json["error"] == "queue_full"
    assert "QUEUE_MAX_BYTES" in response.json["message"]
    assert response.headers["Retry-After"] == "5"  # no drain rate measured yet
    assert r.xlen(settings.stream_name) == 40
    assert _count(r, settings, "ingest_refused_queue_full") == 1


def test_retry_after_follows_the_drain_rate(app, client, r, settings):
    app.extensions["sluice"] = settings.with_overrides(stream_maxlen=10)
    now = r.time()[0]
    r.hset(stream.rate_key(settings), mapping={"rate": "2.0", "at": str(now)})
    client.post("/data/fast", json=[{"message": "m"}] * 10)
    response = client.post("/data/fast", json=[{"message": "m"}] * 8)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "4"  # 8 over the cap at 2 per second
    r.hset(stream.rate_key(settings), mapping={"at": str(now - 120)})
    assert client.post("/data/fast", json=[{"message": "m"}]).headers["Retry-After"] == "60"


def test_the_drain_measures_its_rate(client, r, settings):
    client.post("/data/fast", json=[{"message": "m"}] * 30)
    drain_stream(settings, "c1", budget=0.3)
    kept = r.hgetall(stream.rate_key(settings))
    assert int(kept[b"n"]) == 30  # a window is summed until it is 5 s long


def test_dead_letters_are_bounded_by_bytes_and_counted(r, settings):
    small = settings.with_overrides(dead_letter_max_bytes=32 * 1024)
    stream.ensure_group(r, small)
    for batch in range(4):
        dead = [(Entry(f"{batch}-{i}", {b"d": b"x" * 1000}), "invalid") for i in range(1, 26)]
        stream.acknowledge(r, small, [], dead)
    assert r.memory_usage(small.dead_letter_stream) <= 40 * 1024
    kept = r.xlen(small.dead_letter_stream)
    assert 0 < kept < 100
    assert _count(r, small, "dead_letters_dropped") == 100 - kept
    newest = r.xrevrange(small.dead_letter_stream, count=1)[0][1]
    assert newest[b"stream_id"] == b"3-25"  # the oldest went first


def test_dead_letters_bounded_by_count_are_counted(r, settings):
    small = settings.with_overrides(dead_letter_maxlen=10)
    dead = [(Entry(f"1-{i}", {b"d": b"x"}), "invalid") for i in range(1, 26)]
    stream.acknowledge(r, small, [], dead)
    assert r.xlen(small.dead_letter_stream) == 10
    assert _count(r, small, "dead_letters_dropped") == 15


@pytest.fixture
def small_redis(tmp_path, settings):
    """An app on a private Redis with a 4 MiB maxmemory (noeviction)."""
    with redis_server(tmp_path, "--save", "", "--maxmemory", "4mb") as url:
        yield settings.with_overrides(redis_url=url)


def _fill(r, megabytes: int) -> None:
    r.config_set("maxmemory", "0")
    for i in range(megabytes):
        r.set(f"filler:{i}", b"x" * (1024 * 1024))


def test_redis_near_maxmemory_is_503_with_retry_after(small_redis):
    import redis

    client = create_app(small_redis).test_client()
    r = redis.Redis.from_url(small_redis.redis_url)
    _fill(r, 2)
    time.sleep(1)  # Redis frees the filling client's query buffer in its cron
    used = r.info("memory")["used_memory"]
    r.config_set("maxmemory", str(int(used / 0.8)))  # 80% used, under the 90% mark
    assert client.post("/data/fast", json={"message": "fits"}).status_code == 202
    r.config_set("maxmemory", str(int(used / 0.95)))  # 95% used, past the 90% mark
    time.sleep(stream.MEMORY_CHECK_SECONDS + 0.1)  # each process reads it once a second
    response = client.post("/data/fast", json={"message": "does not fit"})
    assert response.status_code == 503
    assert response.json["error"] == "redis_memory_high"
    assert int(response.headers["Retry-After"]) >= 1
    assert r.xlen(small_redis.stream_name) == 1
    assert int(r.hget(counters.key(small_redis), "ingest_refused_redis_memory")) == 1


def test_redis_out_of_memory_is_503_on_every_receiver(small_redis):
    import redis

    client = create_app(small_redis).test_client()
    r = redis.Redis.from_url(small_redis.redis_url)
    _fill(r, 6)
    r.config_set("maxmemory", str(2 * 1024 * 1024))  # over: every write is refused
    checks = [
        client.post("/data/fast", json={"message": "m"}),
        client.post("/data/", json={"message": "m"}, headers={"Idempotency-Key": "k1"}),
        client.post(
            "/loki/api/v1/push",
            json={"streams": [{"stream": {"app": "a"}, "values": [["1700000000000000000", "m"]]}]},
        ),
        client.post(
            "/_bulk",
            data=b'{"index":{}}\n{"message":"m"}\n',
            content_type="application/x-ndjson",
        ),
    ]
    for response in checks:
        assert response.status_code == 503, (response.request.path, response.get_data())
        assert response.json["error"] in ("redis_out_of_memory", "redis_memory_high")
        assert set(response.json) >= {"error", "message", "status"}
        assert response.headers["Retry-After"]
    r.config_set("maxmemory", "0")
    r.flushall()
    assert client.post("/data/fast", json={"message": "m"}).status_code == 202


def test_stream_enqueue_is_one_round_trip(r, settings, monkeypatch):
    # Count commands sent on the client's connections during one ingest request.
    from app.pipeline import intake

    sent = []
    original = type(r).execute_command

    def counting(self, *args, **kwargs):
        sent.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(stream, "MEMORY_CHECK_SECONDS", 3600)  # read once a second
    intake.submit(r, settings, [{"message": "warm"}])  # the script is loaded once
    monkeypatch.setattr(type(r), "execute_command", counting)
    receipt = intake.submit(r, settings, [{"message": "a"}, {"message": "b"}, {"level": "x"}])
    assert len(receipt.ids) == 2
    assert sent == ["EVALSHA"]
    totals = counters.totals(r, settings)
    assert (totals["ingest_accepted"], totals["ingest_rejected"]) == (3, 1)


# --- the hot path's quick check ----------------------------------------------------------

canonical_items = st.fixed_dictionaries(
    {"message": st.text(max_size=8)},
    optional={
        "level": st.sampled_from(["INFO", "WARN", "info", "Error", "loud", None]),
        "source": st.one_of(st.none(), st.text(max_size=4), st.integers(), st.just("s" * 300)),
        "application": st.one_of(st.none(), st.text(max_size=4)),
        "timestamp": st.one_of(
            st.datetimes(timezones=st.sampled_from([UTC, None])).map(datetime.isoformat),
            st.just("2026-01-01T00:00:00Z"),
            st.integers(0, 2**40),
            st.text(max_size=6),
        ),
        "metadata": st.one_of(json_values, st.just({"a": "x" * 70_000})),
    },
)


@given(item=canonical_items)
def test_quick_log_is_the_schema_or_nothing(item):
    assert_quick_log_is_the_schema_or_nothing(item)


@pytest.mark.parametrize(
    ("item", "quick"),
    [
        ({"message": "m", "level": "WARN", "timestamp": "2026-01-01T00:00:00+02:00"}, True),
        ({"message": "m", "source": "s", "metadata": {"a": [1, {"b": 2}]}}, True),
        ({"message": "m", "level": "warning"}, False),  # the schema normalises it
        ({"message": "m", "user": 7}, False),  # an extra key goes to metadata
        ({"message": "m", "timestamp": 1700000000}, False),
        ({"message": "a\x00b"}, False),
        ({"message": "m", "source": "a\x00"}, False),
        ({"message": "m", "metadata": {"k": "\x00"}}, False),
        ({"message": "  "}, False),
    ],
)
def test_quick_log_takes_only_sluices_own_shape(item, quick):
    from app.pipeline.record import quick_log

    assert (quick_log(item) is not None) == quick


@pytest.mark.parametrize(
    "bad",
    [b'{"message": "big", "n": 1e400}', b'{"message": "\xff\xfe"}', b'{"message": "\\ud800"}'],
    ids=["number-beyond-double", "invalid-utf8", "lone-surrogate"],
)
@pytest.mark.parametrize("path", ["/data/fast", "/data/"])
def test_an_unreadable_item_costs_only_itself(client, path, bad):
    body = b'[{"message": "before"}, ' + bad + b', {"message": "after"}]'
    response = post_json(client, path, body)
    assert response.status_code in (201, 202), response.json
    assert [r["index"] for r in response.json["rejected"]] == [1]
    assert "Not valid JSON" in str(response.json["rejected"][0]["errors"])
    assert len(response.json["ids"]) == 2
