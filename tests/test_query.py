"""The query API: every filter alone and combined, keyset paging while logs arrive,
stats, export, bad parameters, and reads going to DATABASE_READ_URL."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import orjson
import pytest
from sqlalchemy import text

from app import create_app
from app.pipeline import store
from app.pipeline.filters import Filters
from app.web.query import page_query

# Two to three hours ago, on a whole hour, so 5-minute buckets line up with the offsets below.
BASE = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)

# name: (minutes after BASE, level, source, application, message)
LOGS = {
    "a": (0, "INFO", "web-1", "api", "user login ok"),
    "b": (10, "ERROR", "web-1", "api", "payment failed: card declined"),
    "c": (20, "WARN", "web-2", "billing", "disk almost full 95%"),
    "d": (30, "DEBUG", "db-1", "worker", "cache miss for key user_42"),
    "e": (40, "CRITICAL", "web-2", "api", "Out of memory: process killed"),
    "f": (50, "INFO", None, None, "Payment succeeded after retry"),
    "g": (60, "TRACE", "db-1", "worker", "100% done_with 50_percent"),
    "h": (70, "ERROR", "web-1", "billing", "payment declined: insufficient funds"),
}
META = {
    "a": {"user_id": 789},
    "b": {"user_id": "789", "http": {"status": 500}},
    "c": {"http": {"status": 507}, "tags": ["disk", "ops"]},
    "d": {"flag": True},
    "e": {"user_id": 789, "http": {"status": 500}},
    "g": {"nested": {"deep": {"x": None}}},
    "h": {"user_id": 1000},
}
NEWEST_FIRST = "hgfedcba"


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def insert(db, rows: list[dict]) -> list[dict]:
    """Store rows the way the drain does; return them with ids."""
    db.execute(text("SELECT 1"))  # begin: insert_logs writes through the DBAPI cursor
    stored = store.insert_logs(db, rows)
    db.commit()
    return stored


def row(minutes, level="INFO", source=None, application=None, message="m", metadata=None):
    return {
        "timestamp": at(minutes),
        "level": level,
        "source": source,
        "application": application,
        "message": message,
        "metadata": metadata or {},
        "stream_id": None,
    }


@pytest.fixture
def seeded(db) -> dict[int, str]:
    """The LOGS above, stored; id -> name."""
    stored = insert(db, [row(*spec, META.get(name)) for name, spec in LOGS.items()])
    by_message = {spec[4]: name for name, spec in LOGS.items()}
    return {s["id"]: by_message[s["message"]] for s in stored}


def names(response, seeded) -> str:
    assert response.status_code == 200, response.json
    return "".join(seeded[log["id"]] for log in response.json["logs"])


def get(client, path: str, params) -> object:
    query = urlencode(params, doseq=True) if not isinstance(params, str) else params
    return client.get(f"{path}?{query}" if query else path)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, NEWEST_FIRST),
        ({"level": "ERROR"}, "hb"),
        ({"level": ["ERROR", "WARN"]}, "hcb"),
        ({"level": "error,warning"}, "hcb"),
        ({"min_level": "WARN"}, "hecb"),
        ({"min_level": "critical"}, "e"),
        ({"source": "web-1"}, "hba"),
        ({"source": ["web-1", "db-1"]}, "hgdba"),
        ({"application": "billing"}, "hc"),
        ({"application": ["billing", "worker"]}, "hgdc"),
        ({"since": iso(at(25)), "until": iso(at(55))}, "fed"),
        ({"since": iso(at(30)), "until": iso(at(50))}, "ed"),  # since inclusive, until not
        ({"until": iso(at(10))}, "a"),
        ({"q": "payment"}, "hfb"),
        ({"q": '"payment declined"'}, "h"),
        ({"q": "payment declined"}, "hb"),
        ({"q": "payment -declined"}, "f"),
        ({"q": "memory or disk"}, "ec"),
        ({"contains": "PAYMENT"}, "hfb"),
        ({"contains": "100%"}, "g"),
        ({"contains": "_"}, "gd"),
        ({"contains": "95%"}, "c"),
        ({"meta.user_id": "789"}, "eba"),
        ({"meta.http.status": "500"}, "eb"),
        ({"meta.tags": "disk"}, "c"),
        ({"meta.flag": "true"}, "d"),
        ({"meta.nested.deep.x": "null"}, "g"),
        ({"meta.user_id": "789", "meta.http.status": "500"}, "eb"),
        ({"meta.missing": "1"}, ""),
        ({"level": "ERROR", "source": "web-1", "q": "payment", "since": iso(at(5))}, "hb"),
        ({"level": "ERROR", "source": "web-1", "application": "api", "q": "payment"}, "b"),
        ({"min_level": "ERROR", "application": "api", "meta.user_id": "789"}, "eb"),
        ({"source": "web-2", "contains": "memory", "until": iso(at(41))}, "e"),
        ({"order": "asc"}, NEWEST_FIRST[::-1]),
        ({"order": "asc", "level": "ERROR"}, "bh"),
    ],
)
def test_filters(client, seeded, params, expected):
    assert names(get(client, "/logs", params), seeded) == expected


def test_relative_since_counts_back_from_now(client, seeded):
    minutes_ago = (datetime.now(UTC) - at(55)).total_seconds() / 60
    response = get(client, "/logs", {"since": f"{int(minutes_ago)}m"})
    assert names(response, seeded) == "hg"
    assert names(get(client, "/logs", {"since": "1d"}), seeded) == NEWEST_FIRST


def test_page_shape(client, seeded):
    body = get(client, "/logs", {"limit": 3}).json
    assert set(body) == {"logs", "next_cursor", "limit"}
    assert body["limit"] == 3
    log = body["logs"][0]
    assert set(log) == {
        "id",
        "timestamp",
        "level",
        "source",
        "application",
        "message",
        "metadata",
        "stream_id",
        "created_at",
    }
    assert log["timestamp"] == at(70).isoformat()
    assert log["metadata"] == {"user_id": 1000}
    assert get(client, "/logs", {}).json["limit"] == 100
    assert get(client, "/logs", {}).json["next_cursor"] is None


def page_through(client, params: dict, between=lambda: None) -> list[int]:
    ids, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = get(client, "/logs", query).json
        ids += [log["id"] for log in body["logs"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
        between()


def test_cursor_pages_have_no_duplicate_and_no_gap_while_logs_arrive(client, db):
    # 150 logs, five per timestamp, so pages often end inside a group of equal timestamps.
    initial = insert(db, [row(i // 5, message=f"old {i}") for i in range(150)])
    expected = [r["id"] for r in sorted(initial, key=lambda r: (r["timestamp"], r["id"]))][::-1]
    arrivals = iter(range(1000))

    def more_arrive():
        n = next(arrivals)
        # Newer logs, and one at the very timestamp the last page ended on.
        insert(db, [row(100 + n, message="new"), row(100 + n, message="new too")])

    ids = page_through(client, {"limit": 17}, between=more_arrive)
    assert ids == expected
    assert len(ids) == len(set(ids))


def test_ascending_pages_pick_up_logs_that_arrive_after_the_start(client, db):
    initial = insert(db, [row(i // 4, message=f"old {i}") for i in range(60)])
    added: list[int] = []

    def more_arrive():
        if len(added) < 6:
            added.extend(r["id"] for r in insert(db, [row(200 + len(added), message="new")]))

    ids = page_through(client, {"limit": 7, "order": "asc"}, between=more_arrive)
    ordered = sorted(initial, key=lambda r: (r["timestamp"], r["id"]))
    assert ids == [r["id"] for r in ordered] + added
    assert len(ids) == len(set(ids))


def test_cursor_keeps_the_filters_own_order(client, seeded):
    first = get(client, "/logs", {"limit": 2, "level": ["ERROR", "INFO"]}).json
    assert names_of(first, seeded) == "hf"
    second = get(
        client, "/logs", {"limit": 2, "level": ["ERROR", "INFO"], "cursor": first["next_cursor"]}
    ).json
    assert names_of(second, seeded) == "ba"
    assert second["next_cursor"] is None


def names_of(body: dict, seeded) -> str:
    return "".join(seeded[log["id"]] for log in body["logs"])


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/logs", {"limit": "0"}, "limit"),
        ("/logs", {"limit": "1001"}, "limit"),
        ("/logs", {"limit": "ten"}, "limit"),
        ("/logs", "limit=1&limit=2", "limit"),
        ("/logs", {"level": "LOUD"}, "level"),
        ("/logs", {"level": "ERROR", "min_level": "WARN"}, "level"),
        ("/logs", {"min_level": "nope"}, "min_level"),
        ("/logs", {"since": "yesterday"}, "since"),
        ("/logs", {"since": "2026-13-01"}, "since"),
        ("/logs", {"since": "999999999w"}, "since"),
        ("/logs", {"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ("/logs", {"until": "soon"}, "until"),
        ("/logs", {"since": "2h", "until": "3h"}, "since"),
        ("/logs", {"order": "sideways"}, "order"),
        ("/logs", {"cursor": "not a cursor!"}, "cursor"),
        ("/logs", {"cursor": _cursor({"t": "2026-01-01T00:00:00+00:00", "i": "7"})}, "cursor"),
        ("/logs", {"cursor": _cursor({"t": "2026-01-01T00:00:00", "i": 7, "o": "desc"})}, "cursor"),
        ("/logs", {"cursor": _cursor([1, 2])}, "cursor"),
        (
            "/logs",
            {
                "cursor": _cursor({"t": "2026-01-01T00:00:00+00:00", "i": 7, "o": "desc"}),
                "order": "asc",
            },
            "cursor",
        ),
        ("/logs", {"bogus": "1"}, "bogus"),
        ("/logs", {"meta": "1"}, "meta"),
        ("/logs", {"meta.": "1"}, "meta."),
        ("/logs", {"meta.a..b": "1"}, "meta.a..b"),
        ("/logs", {"meta.a": "x\x00y"}, "meta.a"),
        ("/logs", {"q": "!!!"}, "q"),
        ("/logs", {"q": "a\x00b"}, "q"),
        ("/logs", {"contains": "x" * 501}, "contains"),
        ("/logs", {"source": "s" * 256}, "source"),
        ("/logs/stats", {"interval": "2m"}, "interval"),
        ("/logs/stats", {"interval": "1m", "since": "30d"}, "interval"),
        ("/logs/stats", {"since": "3000d"}, "since"),
        ("/logs/stats", {"since": "1h", "until": "2h"}, "since"),
        ("/logs/stats", {"limit": "5"}, "limit"),
        ("/logs/stats", {"top": "101"}, "top"),
        ("/logs/export", {"limit": "0"}, "limit"),
        ("/logs/export", {"cursor": "abc"}, "cursor"),
        ("/logs/export", {"q": "-"}, "q"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client, path, params, field):
    response = get(client, path, params)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.json
    assert body["error"] == "validation_error"
    assert body["status"] == 400
    assert field in body["fields"], body
    assert all(isinstance(problem, str) for problem in body["fields"][field])


def test_get_one_log(client, seeded):
    log_id = next(i for i, name in seeded.items() if name == "c")
    response = client.get(f"/logs/{log_id}")
    assert response.status_code == 200
    assert response.json["id"] == log_id
    assert response.json["metadata"] == {"http": {"status": 507}, "tags": ["disk", "ops"]}
    assert response.json == get(client, "/logs", {"level": "WARN"}).json["logs"][0]


@pytest.mark.parametrize("path", ["/logs/0", f"/logs/{2**64}", "/logs/abc", "/logs/-1"])
def test_missing_log_is_404_in_the_error_shape(client, seeded, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert response.json["status"] == 404


def test_stats_counts_every_bucket(client, seeded):
    body = get(
        client, "/logs/stats", {"interval": "5m", "since": iso(at(0)), "until": iso(at(80))}
    ).json
    assert body["interval"] == "5m"
    assert body["since"] == iso(at(0))
    assert body["until"] == iso(at(80))
    assert body["total"] == 8
    buckets = body["buckets"]
    assert [b["time"] for b in buckets] == [iso(at(5 * i)) for i in range(16)]
    by_time = {b["time"]: b for b in buckets}
    assert by_time[iso(at(10))]["counts"] == {
        "TRACE": 0,
        "DEBUG": 0,
        "INFO": 0,
        "WARN": 0,
        "ERROR": 1,
        "CRITICAL": 0,
    }
    assert by_time[iso(at(5))]["total"] == 0
    assert sum(b["total"] for b in buckets) == 8
    assert body["levels"] == {
        "TRACE": 1,
        "DEBUG": 1,
        "INFO": 2,
        "WARN": 1,
        "ERROR": 2,
        "CRITICAL": 1,
    }
    assert body["top_sources"] == [
        {"source": "web-1", "count": 3},
        {"source": "db-1", "count": 2},
        {"source": "web-2", "count": 2},
    ]
    assert body["top_applications"] == [
        {"application": "api", "count": 3},
        {"application": "billing", "count": 2},
        {"application": "worker", "count": 2},
    ]


def test_stats_apply_the_filters(client, seeded):
    window = {"since": iso(at(0)), "until": iso(at(80))}
    body = get(client, "/logs/stats", {**window, "min_level": "ERROR", "q": "payment"}).json
    assert body["total"] == 2
    assert body["levels"]["ERROR"] == 2
    assert body["top_sources"] == [{"source": "web-1", "count": 2}]
    body = get(client, "/logs/stats", {**window, "meta.http.status": "500", "interval": "1h"}).json
    assert body["total"] == 2
    assert len(body["buckets"]) == 2


def test_stats_top_lists_can_be_shortened_or_skipped(client, seeded):
    window = {"since": iso(at(0)), "until": iso(at(80))}
    body = get(client, "/logs/stats", {**window, "top": "1"}).json
    assert body["top_sources"] == [{"source": "web-1", "count": 3}]
    assert body["top_applications"] == [{"application": "api", "count": 3}]
    body = get(client, "/logs/stats", {**window, "top": "0"}).json
    assert body["top_sources"] == body["top_applications"] == []
    assert body["total"] == 8


@pytest.mark.parametrize(
    ("params", "interval", "span"),
    [
        ({}, "5m", timedelta(hours=24)),
        ({"since": "2h"}, "1m", timedelta(hours=2)),
        ({"since": "7d"}, "1h", timedelta(days=7)),
        ({"since": "14d"}, "1h", timedelta(days=14)),
        ({"since": "60d"}, "1d", timedelta(days=60)),
    ],
)
def test_stats_pick_an_interval(client, params, interval, span):
    body = get(client, "/logs/stats", params).json
    assert body["interval"] == interval
    since, until = datetime.fromisoformat(body["since"]), datetime.fromisoformat(body["until"])
    assert abs((until - since) - span) < timedelta(seconds=5)
    assert len(body["buckets"]) <= 360
    assert body["total"] == 0
    assert all(b["total"] == 0 for b in body["buckets"])


def export_lines(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/x-ndjson"
    # The standard library's parser: it keeps integers beyond 64 bits exact.
    return [json.loads(line) for line in response.get_data().splitlines()]


def test_export_is_the_filtered_logs_as_ndjson_newest_first(client, seeded):
    lines = export_lines(client.get("/logs/export"))
    assert "".join(seeded[log["id"]] for log in lines) == NEWEST_FIRST
    assert lines == get(client, "/logs", {}).json["logs"]
    lines = export_lines(get(client, "/logs/export", {"level": "ERROR", "limit": "1"}))
    assert [seeded[log["id"]] for log in lines] == ["h"]
    lines = export_lines(get(client, "/logs/export", {"q": "payment", "order": "asc"}))
    assert "".join(seeded[log["id"]] for log in lines) == "bfh"


def test_export_streams_in_chunks(client, db):
    insert(db, [row(i / 100, message=f"bulk {i}") for i in range(2500)])
    response = client.get("/logs/export", buffered=False)
    assert response.is_streamed
    assert response.mimetype == "application/x-ndjson"
    chunks = [chunk for chunk in response.response if chunk]
    assert len(chunks) == 3  # 1000 rows per chunk
    lines = [json.loads(line) for line in b"".join(chunks).splitlines()]
    assert len(lines) == 2500
    assert lines[0]["message"] == "bulk 2499"


def test_big_integers_in_metadata_still_read(client, db):
    db.execute(
        text(
            "INSERT INTO logs (timestamp, level, message, metadata) "
            "VALUES (now(), 'INFO', 'big', '{\"n\": 100000000000000000000000000001}')"
        )
    )
    db.commit()
    assert get(client, "/logs", {}).json["logs"][0]["metadata"] == {"n": 10**29 + 1}
    assert export_lines(client.get("/logs/export"))[0]["metadata"] == {"n": 10**29 + 1}


def test_reads_go_to_the_read_url(settings, seeded):
    gone = "postgresql+psycopg2://postgres@127.0.0.1:1/gone"
    client = create_app(settings.with_overrides(database_read_url=gone)).test_client()
    for path in ("/logs", "/logs/1", "/logs/stats", "/logs/export"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.json["error"] == "database_unavailable"
    stored = client.post("/data/", json={"message": "writes still go to the primary"})
    assert stored.status_code == 201


def test_time_bounded_queries_read_only_the_partitions_of_their_window(db):
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    filters = Filters(since=day + timedelta(hours=1), until=day + timedelta(hours=2))
    statement = page_query(filters, "desc", 100, None).compile(dialect=db.dialect)
    plan = db.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", statement.params).scalar()
    scanned = set(_relations(plan))
    assert scanned == {f"logs_p{day:%Y%m%d}"}


def _relations(node):
    if isinstance(node, dict):
        if "Relation Name" in node:
            yield node["Relation Name"]
        for value in node.values():
            yield from _relations(value)
    elif isinstance(node, list):
        for value in node:
            yield from _relations(value)
