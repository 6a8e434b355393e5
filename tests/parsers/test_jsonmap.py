"""The JSON-object mapping (`parsers.aliases.map_fields`): senders, edge cases, properties."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.aliases import (
    APPLICATION_KEYS,
    LEVEL_KEYS,
    MESSAGE_KEYS,
    MISSING_MESSAGE,
    SOURCE_KEYS,
    TIMESTAMP_KEYS,
    map_fields,
)
from parsers.fields import LEVELS, normalize_level
from tests.parsers.expect import utc
from tests.parsers.senders import SENDERS


@pytest.mark.parametrize(
    ("record", "found", "metadata"),
    [pytest.param(rec, found, meta, id=name) for name, rec, found, meta in SENDERS],
)
def test_senders(record: dict, found: dict, metadata: dict) -> None:
    assert map_fields(record) == (found, metadata)


CASES = [
    # Docker: only the one trailing newline (or CRLF) goes; other whitespace is the line's.
    ({"log": "a\r\n"}, {"message": "a"}, {}),
    ({"log": "  indented\n\n"}, {"message": "  indented\n"}, {}),
    ({"log": "no newline", "stream": "stderr"}, {"message": "no newline"}, {"stream": "stderr"}),
    ({"message": "kept\n"}, {"message": "kept\n"}, {}),
    # The first key present wins; the others stay in metadata as sent.
    ({"message": "a", "msg": "b", "log": "c"}, {"message": "a"}, {"msg": "b", "log": "c"}),
    (
        {"msg": "a", "time": 1, "date": 2.5},
        {"message": "a", "timestamp": utc(1970, 1, 1, 0, 0, 1)},
        {"date": 2.5},
    ),
    (
        {"msg": "a", "level": None, "severity": "err"},
        {"message": "a", "level": "ERROR"},
        {"level": None},
    ),
    # ECS: dotted before nested; an object under `log` is not a message; empty `log` goes.
    (
        {"message": "m", "log.level": "info", "log": {"level": "error"}},
        {"message": "m", "level": "INFO"},
        {"log": {"level": "error"}},
    ),
    ({"log": {"level": "error"}}, {"level": "ERROR"}, {}),
    ({"log": {"logger": "x"}, "msg": "m"}, {"message": "m"}, {"log": {"logger": "x"}}),
    ({"message": "m", "host": {"name": "h"}}, {"message": "m"}, {"host": {"name": "h"}}),
    (
        {"message": "m", "host": {"name": "h"}, "host.name": "h"},
        {"message": "m", "source": "h"},
        {"host": {"name": "h"}},
    ),
    # What cannot be read is kept, renamed, never refused.
    ({"msg": "m", "date": "someday"}, {"message": "m"}, {"timestamp_raw": "someday"}),
    ({"msg": "m", "level": 35}, {"message": "m"}, {"level_raw": 35}),
    ({"msg": "m", "level": True}, {"message": "m"}, {"level_raw": True}),
    ({"msg": {"text": "structured"}}, {"message": '{"text":"structured"}'}, {}),
    # No message under any key: the caller decides (raw line, or a refusal).
    ({"event": "login", "user": 7}, {}, {"event": "login", "user": 7}),
]


@pytest.mark.parametrize(("record", "found", "metadata"), CASES)
def test_cases(record: dict, found: dict, metadata: dict) -> None:
    assert map_fields(record) == (found, metadata)


def test_fields_the_caller_has_are_not_looked_for() -> None:
    record = {"msg": "alias", "severity": "error", "host": "h", "ts": 0}
    found, metadata = map_fields(record, have={"message", "level"})
    assert found == {"source": "h", "timestamp": utc(1970, 1, 1)}
    assert metadata == {"msg": "alias", "severity": "error"}


def test_logfmt_fallback_level_only_when_no_level_key() -> None:
    assert map_fields({"msg": "m", "at": "error"}, fallback_level_key="at") == (
        {"message": "m", "level": "ERROR"},
        {},
    )
    assert map_fields({"at": "error", "level": "loud"}, fallback_level_key="at")[1] == {
        "at": "error",
        "level_raw": "loud",
    }


@pytest.mark.parametrize(
    ("value", "level"),
    [
        *[(10, "TRACE"), (20, "DEBUG"), (30, "INFO"), (40, "WARN"), (50, "ERROR")],
        *[(60, "CRITICAL"), (35, None), (0, None), (True, None), (30.0, None), ("30", None)],
    ],
)
def test_numeric_levels(value: object, level: str | None) -> None:
    assert normalize_level(value) == level


def test_missing_message_names_every_key_looked_for() -> None:
    assert all(key in MISSING_MESSAGE for key in MESSAGE_KEYS)


FIELD_KEYS = [*TIMESTAMP_KEYS, *LEVEL_KEYS, *MESSAGE_KEYS, *SOURCE_KEYS, *APPLICATION_KEYS]
TOP_KEYS = [key for key in FIELD_KEYS if isinstance(key, str)]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["info", "WARN", "2024-05-01T12:00:00Z", "x\n"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["level", "name", "x"]) | st.text(max_size=5), inner, max_size=3
        )
    ),
    max_leaves=8,
)
# Keys the mapping reads, so every path is exercised, and keys it must leave alone.
OBJECTS = st.dictionaries(
    st.sampled_from([*TOP_KEYS, "metadata", "stream"]) | st.text(max_size=8), VALUES, max_size=8
)
PROPS = settings(max_examples=300, deadline=None)


@PROPS
@given(OBJECTS)
def test_never_raises_and_every_found_value_is_storable(record: dict) -> None:
    before = copy.deepcopy(record)
    found, metadata = map_fields(record)
    assert record == before, "the record is not changed"
    assert isinstance(metadata, dict)
    assert isinstance(found.get("message", ""), str)
    assert found.get("level", "INFO") in LEVELS
    assert isinstance(found.get("timestamp", utc(2000, 1, 1)), datetime)
    assert "timestamp" not in found or found["timestamp"].tzinfo is not None
    assert all(isinstance(found.get(name, ""), str) for name in ("source", "application"))


@PROPS
@given(message=st.text(), record=OBJECTS)
def test_a_message_string_is_kept_as_sent(message: str, record: dict) -> None:
    found, _ = map_fields({**record, "message": message})
    assert found["message"] == message


@PROPS
@given(OBJECTS)
def test_keys_no_field_reads_pass_to_metadata_unchanged(record: dict) -> None:
    record.pop("metadata", None)  # its keys are merged, and may shadow the others
    _, metadata = map_fields(record)
    for key, value in record.items():
        if key not in TOP_KEYS and key not in ("level_raw", "timestamp_raw"):
            assert metadata[key] == value
