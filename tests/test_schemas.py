"""The log schema's edge cases, and the drain's fast path agreeing with it."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.pipeline.record import canonical_log, load_logs, log_schema, to_stream_json
from parsers.fields import LEVELS

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
    if not accepted:
        return
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
