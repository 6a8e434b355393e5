"""Raw lines of every format through the real path: POST text/plain -> stream -> drain ->
PostgreSQL, and POST /parse/auto, GET /parse/formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from app import create_app
from app.pipeline import stream
from parsers import get_factory
from tasks.drain import drain_stream

MIXED = (Path(__file__).parent / "data" / "mixed.log").read_text()


def stored_rows(db):
    db.rollback()
    query = "SELECT timestamp, level, source, application, message, metadata FROM logs ORDER BY id"
    return [dict(r._mapping) for r in db.execute(text(query))]


def test_mixed_file_is_stored_with_every_field_parsed(client, r, settings, db):
    response = client.post("/data/fast", data=MIXED, content_type="text/plain")
    assert response.status_code == 202
    assert response.json["accepted"] == 8
    stream.ensure_group(r, settings)
    stats = drain_stream(settings, "c1", budget=0.5)
    assert (stats.stored, stats.dead) == (8, 0)
    rows = stored_rows(db)
    assert [row["metadata"]["format"] for row in rows] == [
        "json",
        "apache",
        "apache",
        "syslog5424",
        "syslog3164",
        "syslog3164",
        "logfmt",
        "raw",
    ]
    js, apache, apache6, s5424, s3164, s3164_nopri, logfmt, raw = rows

    assert js["timestamp"] == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert (js["level"], js["source"], js["application"]) == ("WARN", "web-1", "api")
    assert js["message"] == "disk almost full"
    assert js["metadata"]["disk"] == {"free_mb": 512}

    assert apache["timestamp"] == datetime(
        2000, 10, 10, 13, 55, 36, tzinfo=timezone(timedelta(hours=-7))
    )
    assert apache["level"] == "INFO"
    assert apache["message"] == "GET /apache_pb.gif 200"
    meta = apache["metadata"]
    assert (meta["client"], meta["user"], meta["status"], meta["bytes"]) == (
        "203.0.113.7",
        "frank",
        200,
        2326,
    )
    assert meta["user_agent"] == "Mozilla/4.08 [en] (Win98; I ;Nav)"
    assert apache6["level"] == "ERROR"
    assert (apache6["metadata"]["client"], apache6["metadata"]["bytes"]) == ("2001:db8::1", None)
    assert apache6["metadata"]["user_agent"] == 'curl/8.0 "quoted"'

    assert s5424["level"] == "INFO"
    assert (s5424["source"], s5424["application"]) == ("mymachine.example.com", "evntslog")
    assert s5424["message"] == "An application event log entry"
    assert s5424["metadata"]["msgid"] == "ID47"
    assert s5424["metadata"]["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application"},
        "other@1": {"k": 'v "q"'},
    }
    assert s5424["timestamp"] == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)

    assert (s3164["level"], s3164["source"], s3164["application"]) == (
        "CRITICAL",
        "mymachine",
        "su",
    )
    assert s3164["metadata"]["pid"] == 2093
    assert (s3164["timestamp"].month, s3164["timestamp"].day) == (10, 11)
    assert s3164_nopri["application"] == "sshd"
    assert s3164_nopri["level"] == "INFO"

    assert (logfmt["level"], logfmt["source"], logfmt["application"]) == ("ERROR", "web-2", "web")
    assert logfmt["message"] == "request failed"
    assert logfmt["metadata"]["status"] == "500"

    assert raw["message"] == "just a line nobody can parse"
    assert raw["level"] == "INFO"


def test_format_parameter_skips_detection(client, r, settings, db):
    line = "ts=2024-05-01T12:00:01Z level=error msg=x app=web"
    response = client.post("/data/fast?format=apache", data=line, content_type="text/plain")
    assert response.status_code == 202
    stream.ensure_group(r, settings)
    drain_stream(settings, "c1", budget=0.3)
    (row,) = stored_rows(db)
    assert row["metadata"]["format"] == "raw"  # not apache, and not detected as logfmt
    assert row["message"] == line


def test_sync_ingest_parses_text_too(client, db):
    response = client.post("/data/", data=MIXED, content_type="text/plain")
    assert response.status_code == 201
    assert response.json["stored"] == 8
    assert [row["metadata"]["format"] for row in stored_rows(db)][:2] == ["json", "apache"]


def test_parse_auto_json_body(client):
    line = "<34>Oct 11 22:14:15 mymachine su: failed"
    response = client.post("/parse/auto", json={"raw_log": line})
    assert response.status_code == 200
    (result,) = response.json["results"]
    assert result["format"] == "syslog3164"
    assert result["log"]["application"] == "su"
    assert result["log"]["level"] == "CRITICAL"


def test_parse_auto_many_lines_reports_each(client):
    response = client.post("/parse/auto", data=MIXED, content_type="text/plain")
    assert response.status_code == 200
    formats = [r["format"] for r in response.json["results"]]
    assert formats[:2] == ["json", "apache"]
    assert formats[-1] is None
    assert "error" in response.json["results"][-1]
    assert response.json["parsed"] == 7


def test_parse_auto_nothing_matches_is_422(client):
    response = client.post("/parse/auto", json={"raw_log": "hello there"})
    assert response.status_code == 422
    assert response.json["error"] == "unrecognised_format"
    assert response.json["results"][0]["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "raw_log"),
        ({"raw_log": ""}, "raw_log"),
        ({"raw_log": 5}, "raw_log"),
        ({"raw_log": "x", "format": "klingon"}, "format"),
    ],
)
def test_parse_auto_bad_input_names_the_field(client, body, field):
    response = client.post("/parse/auto", json=body)
    assert response.status_code == 400
    assert field in response.json["fields"]


def test_parse_formats_lists_every_format_with_an_example(client):
    formats = {f["name"]: f for f in client.get("/parse/formats").json["formats"]}
    assert {"json", "apache", "syslog5424", "syslog3164", "logfmt"} <= set(formats)
    for name in ("json", "apache", "syslog5424", "syslog3164", "logfmt"):
        assert formats[name]["example"]
        parsed = client.post("/parse/auto", json={"raw_log": formats[name]["example"]})
        assert parsed.json["results"][0]["format"] == name


@pytest.fixture
def custom_java():
    yield
    get_factory().remove_parser("java")  # the factory is per process: leave it as found


def test_custom_patterns_from_configuration(settings, custom_java):
    spec = (
        '[{"name": "java", "pattern": "^(?P<level>[A-Z]+) \\\\[(?P<thread>\\\\w+)\\\\] '
        '(?P<message>.*)$", "example": "ERROR [main] boom"}]'
    )
    app = create_app(settings.with_overrides(parser_patterns=spec))
    client = app.test_client()
    result = client.post("/parse/auto", json={"raw_log": "WARN [worker7] slow disk"}).json
    (line,) = result["results"]
    assert line["format"] == "java"
    assert line["log"]["level"] == "WARN"
    assert line["log"]["metadata"] == {"thread": "worker7"}
    assert "java" in {f["name"] for f in client.get("/parse/formats").json["formats"]}


def test_bad_custom_pattern_stops_start_up(settings):
    with pytest.raises(ValueError, match="broken"):
        create_app(settings.with_overrides(parser_patterns='[{"name": "broken", "pattern": "(["}]'))
