"""The log schema's edge cases, and the drain's fast path agreeing with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.pipeline.jsoncodec import utc_iso
from app.pipeline.record import (
    canonical_log,
    load_logs,
    log_schema,
    quick_log,
    raw_to_data,
    to_stream_json,
)
from parsers.fields import LEVELS
from tests.helpers import assert_quick_log_is_the_schema_or_nothing

names = st.one_of(st.none(), st.text(max_size=300))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20)),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
logs = st.fixed_dictionaries(
    {"message": st.text(max_size=200)},
    optional={
        "level": st.sampled_from([*LEVELS, "warning", "err", "Fatal", "nope", 3]),
        "source": names,
        "application": names,
        "timestamp": st.one_of(
            st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
            st.integers(0, 4_000_000_000_000),
            st.text(max_size=30),
        ),
        "metadata": st.dictionaries(st.text(max_size=10), json_values, max_size=4),
        "extra": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(logs)
def test_fast_path_agrees_with_the_schema(raw):
    """Whatever ingest accepts, the drain's fast path reads back exactly as the schema."""
    (accepted, _) = load_logs([raw])
    assume(accepted)  # hypothesis fails the test if almost nothing is accepted
    encoded = to_stream_json(accepted[0][1])
    decoded = orjson.loads(encoded)
    fast = canonical_log(decoded, encoded)
    assert fast is not None
    assert fast == log_schema.load(decoded)


@pytest.mark.parametrize(
    "data",
    [
        {"message": "x", "level": "warning"},  # not normalised
        {"message": "x", "timestamp": "2024-01-01T00:00:00"},  # no offset
        {"message": "x", "timestamp": 1700000000},  # not ISO
        {"message": "x", "user": 1},  # unknown key
        {"message": " "},
        {"message": "x", "source": "s" * 256},
        {"message": "x\u0000"},
        {"message": "x", "metadata": []},
        ["not", "a", "dict"],
    ],
)
def test_fast_path_declines_anything_not_canonical(data):
    assert canonical_log(data, orjson.dumps(data)) is None


def test_timestamps_become_utc():
    log = log_schema.load({"message": "x", "timestamp": "2024-01-01T05:00:00+05:00"})
    assert log["timestamp"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert log["timestamp"].utcoffset().total_seconds() == 0


# --- the drain's quick check on parsed raw lines ------------------------------------------

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
# One line of each format the drain parses, as shippers send them; each is in Sluice's
# own shape once parsed, so the schema load is skipped for all of them.
PARSED_LINES = [
    "<134>1 2026-12-02T09:59:00.123Z web01 checkout 4242 ID47 - payment failed order=123",
    '<11>1 2026-12-02T09:59:00Z h app - - [origin ip="10.0.0.1"] disk full',
    "<13>Dec  2 09:59:00 web01 sshd[812]: Accepted publickey for deploy",
    '127.0.0.1 - frank [02/Dec/2026:09:59:00 +0000] "GET /a HTTP/1.1" 200 2326',
    'ts=2026-12-02T09:59:00Z level=warn msg="slow query" duration=2.5s',
    '{"message": "json line", "level": "error", "service": "api", "user": 7}',
    "a line in no format at all",
]
raw_lines = st.one_of(
    st.sampled_from(PARSED_LINES),
    st.text(max_size=120),
    st.builds(lambda a, b: a + b, st.sampled_from(PARSED_LINES), st.text(max_size=20)),
)


@pytest.mark.parametrize("line", PARSED_LINES)
def test_parsed_lines_take_the_quick_check_and_agree_with_the_schema(line):
    data = raw_to_data(line, None, NOW)
    quick = quick_log(data)
    assert quick is not None, data
    assert quick == log_schema.load(data)


@pytest.mark.parametrize(
    "line",
    ["   ", "a\x00b", "<13>1 - - - - - \x00"],
    ids=["blank", "nul", "syslog-with-nul"],
)
def test_parsed_lines_the_schema_must_judge_are_left_to_it(line):
    assert quick_log(raw_to_data(line, None, NOW)) is None


@settings(max_examples=300, deadline=None)
@given(line=raw_lines)
def test_quick_check_of_a_parsed_line_is_the_schema_or_nothing(line):
    assert_quick_log_is_the_schema_or_nothing(raw_to_data(line, None, NOW))


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(timezones=st.timezones())
    | st.datetimes(timezones=st.just(UTC))
    | st.datetimes(
        timezones=st.builds(timezone, st.timedeltas(-timedelta(hours=23), timedelta(hours=23)))
    )
)
def test_utc_iso_is_what_isoformat_writes_in_utc(moment):
    try:
        expected = moment.astimezone(UTC).isoformat()
    except OverflowError:  # at the ends of the calendar, both refuse
        with pytest.raises(OverflowError):
            utc_iso(moment)
        return
    assert utc_iso(moment) == expected


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05+00:00"),
        (datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC), "2026-01-02T03:04:05.000007+00:00"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00+00:00"),
        (
            datetime(2026, 1, 2, 5, 34, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2026-01-02T00:04:00+00:00",
        ),
    ],
)
def test_utc_iso_examples(moment, written):
    assert utc_iso(moment) == written
