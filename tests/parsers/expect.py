"""Compare a ParsedLog with a table row that names only the fields it cares about."""

from __future__ import annotations

from datetime import UTC, datetime

from parsers import ParsedLog

FIELDS = ("message", "timestamp", "level", "source", "application", "metadata")


def utc(*parts: int) -> datetime:
    """An aware UTC datetime, shorter to write in tables."""
    return datetime(*parts, tzinfo=UTC)


def check(parsed: ParsedLog | None, expected: dict) -> None:
    """Assert every field named in `expected`; `meta` checks a subset of metadata.

    `offset` (a timedelta) checks the UTC offset the timestamp carries.

    A field left out of the row is not checked; `metadata` compares the whole dict.
    """
    assert parsed is not None, "the line did not parse"
    for name in FIELDS:
        if name in expected:
            assert getattr(parsed, name) == expected[name], name
    if "offset" in expected:
        # Equal instants compare equal across zones; `offset` pins the zone kept.
        assert parsed.timestamp.utcoffset() == expected["offset"]
    for key, value in expected.get("meta", {}).items():
        assert key in parsed.metadata, key
        assert parsed.metadata[key] == value, key
    assert "format" not in parsed.metadata, "the caller, not the parser, sets format"
