"""Each sender's JSON record through both doors of `POST /data/fast`, the JSON body and a
`text/plain` line, drained into PostgreSQL: both store the same log, field for field."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from sqlalchemy import text

from app.pipeline import stream
from app.pipeline.record import KNOWN_FIELDS, log_schema
from parsers.aliases import (
    APPLICATION_KEYS,
    LEVEL_KEYS,
    MESSAGE_KEYS,
    MISSING_MESSAGE,
    SOURCE_KEYS,
    TIMESTAMP_KEYS,
    map_fields,
)
from parsers.jsonlines import JsonParser
from tasks.drain import drain_stream
from tests.parsers.expect import utc
from tests.parsers.senders import SENDERS

# The text path stores the format that read the line (`raw_to_data` adds `format`); a JSON
# body has no format. That one key is the only difference allowed between the two logs.
TEXT_PATH_METADATA = {"format": "json"}


def stored_rows(db) -> list[dict]:
    db.rollback()
    query = "SELECT timestamp, level, source, application, message, metadata FROM logs ORDER BY id"
    return [dict(row._mapping) for row in db.execute(text(query))]


def drain(r, settings) -> None:
    stream.ensure_group(r, settings)
    stats = drain_stream(settings, "c1", budget=0.5)
    assert stats.dead == 0


def post(client, body: bytes | str, content_type: str, url: str = "/data/fast"):
    response = client.post(url, data=body, content_type=content_type)
    assert response.status_code in (201, 202), response.json
    return response


@pytest.mark.parametrize(
    ("record", "found", "metadata"),
    [pytest.param(rec, found, meta, id=name) for name, rec, found, meta in SENDERS],
)
def test_json_body_and_text_line_store_the_same_log(
    client, r, settings, db, record, found, metadata
):
    post(client, orjson.dumps(record), "application/json")
    post(client, json.dumps(record), "text/plain")
    drain(r, settings)
    rows = stored_rows(db)
    assert len(rows) == 2
    from_body, from_line = sorted(rows, key=lambda row: "format" in row["metadata"])
    assert from_line["metadata"] == {**from_body["metadata"], **TEXT_PATH_METADATA}
    assert {**from_line, "metadata": None} == {**from_body, "metadata": None}
    assert from_body == {
        "timestamp": found["timestamp"],
        "level": found.get("level", "INFO"),
        "source": found.get("source"),
        "application": found.get("application"),
        "message": found["message"],
        "metadata": metadata,
    }


def test_docker_json_file_lines_as_ndjson(client, r, settings, db):
    body = (
        '{"log":"GET /health 200\\n","stream":"stdout","time":"2024-05-01T12:00:00.000000001Z"}\n'
        '{"log":"panic: boom\\r\\n","stream":"stderr","time":"2024-05-01T12:00:01.5Z"}\n'
    )
    assert post(client, body, "application/x-ndjson").json["accepted"] == 2
    drain(r, settings)
    assert [(row["message"], row["metadata"], row["timestamp"]) for row in stored_rows(db)] == [
        ("GET /health 200", {"stream": "stdout"}, utc(2024, 5, 1, 12)),
        ("panic: boom", {"stream": "stderr"}, utc(2024, 5, 1, 12, 0, 1, 500000)),
    ]


def test_the_shipper_batch_is_stored_now_too(client, db):
    batch = [{"date": 1714564800.25, "log": "one\n"}, {"date": 1714564801.0, "log": "two\n"}]
    assert post(client, orjson.dumps(batch), "application/json", url="/data/").json["stored"] == 2
    assert [row["message"] for row in stored_rows(db)] == ["one", "two"]


def test_an_object_naming_no_message_is_refused_alone(client):
    response = post(client, orjson.dumps([{"event": "login"}, {"msg": "ok"}]), "application/json")
    assert response.json["accepted"] == 1
    assert response.json["rejected"] == [{"index": 0, "errors": {"message": [MISSING_MESSAGE]}}]
    assert all(key in MISSING_MESSAGE for key in MESSAGE_KEYS)


def test_values_the_mapping_cannot_read_are_kept_not_refused(client, r, settings, db):
    # Before the mapping these keys were plain metadata: an odd value must not refuse the log.
    record = {"message": "x", "severity": "loud", "time": "yesterday", "host": {"name": "h"}}
    post(client, orjson.dumps(record), "application/json")
    drain(r, settings)
    (row,) = stored_rows(db)
    assert (row["level"], row["source"]) == ("INFO", None)
    assert row["metadata"] == {
        "level_raw": "loud",
        "timestamp_raw": "yesterday",
        "host": {"name": "h"},
    }


def test_sluice_own_names_are_still_validated_as_sent(client):
    body = [{"message": "x", "level": "loud"}, {"message": "x", "source": 5}, {"message": None}]
    response = client.post("/data/fast", data=orjson.dumps(body), content_type="application/json")
    assert response.status_code == 422
    assert [list(x["errors"]) for x in response.json["rejected"]] == [
        ["level"],
        ["source"],
        ["message"],
    ]


# Keys the mapping reads (Sluice's own names aside: those the schema validates as sent).
ALIAS_KEYS = [
    key
    for key in (*TIMESTAMP_KEYS, *LEVEL_KEYS, *MESSAGE_KEYS, *SOURCE_KEYS, *APPLICATION_KEYS)
    if isinstance(key, str) and key not in KNOWN_FIELDS
]
# NUL and lone surrogates: the parser replaces them, the schema refuses them (by design).
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20)
# Values each field can read, often, so the mapping takes aliases and not only refuses them.
READABLE = st.sampled_from(
    ["warn", "ERROR", 30, 60, 1714564800.5, 1714564800123, "2024-05-01T12:00:00+02:00", "a\n"]
)
VALUES = READABLE | st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
OTHER_KEYS = st.sampled_from(ALIAS_KEYS) | TEXT.filter(lambda key: key not in KNOWN_FIELDS)
# Any keys, then often a message under one of its keys (`message` too: the others then stay).
RECORDS = st.builds(
    lambda record, key, message: {**record, key: message} if key else record,
    st.dictionaries(OTHER_KEYS, VALUES, max_size=8),
    st.sampled_from([None, *MESSAGE_KEYS]),
    TEXT | VALUES,
)


@settings(max_examples=300, deadline=None)
@given(RECORDS)
def test_the_json_body_reads_what_the_json_parser_reads(record: dict) -> None:
    """One mapping: whatever the body accepts is the log the parser reads from the same
    object; the body refuses an object naming no message (the parser keeps the line)."""
    parsed = JsonParser().parse(json.dumps(record))
    try:
        log = log_schema.load(record)
    except ValidationError:
        reject()  # counted by hypothesis, which fails the test if it rejects almost all
    assert "message" in map_fields(record)[0]
    assert log == {
        "timestamp": parsed.timestamp,
        "level": parsed.level or "INFO",
        "source": parsed.source,
        "application": parsed.application,
        "message": parsed.message,
        "metadata": parsed.metadata,
    }


@pytest.mark.parametrize(
    "record",
    [
        {"message": "m", "host": "h" * 300},  # too long for a source: metadata, as before
        {"message": "m", "service": "s" * 256},
        {"message": "m", "time": "0001-01-01T00:00:00+05:00"},  # no UTC form: kept raw
    ],
    ids=["long host", "long service", "time before year 1 in UTC"],
)
def test_what_was_accepted_before_is_accepted_now(record, client, r, settings, db):
    stream.ensure_group(r, settings)
    answer = client.post("/data/fast", data=orjson.dumps(record), content_type="application/json")
    assert answer.status_code == 202, answer.json
    assert drain_stream(settings, "before", budget=0.3).stored == 1
    (metadata,) = db.execute(text("SELECT metadata FROM logs")).scalars()
    for key, value in record.items():
        if key != "message":
            assert value in metadata.values(), (key, metadata)
