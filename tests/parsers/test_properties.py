"""Properties: nothing raises on any text, detection is stable, JSON and Apache round-trip."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers import LogParser, RegexParser, detect_format, get_factory, list_formats, parse_line
from parsers.aliases import APPLICATION_KEYS, LEVEL_KEYS, MESSAGE_KEYS, SOURCE_KEYS, TIMESTAMP_KEYS
from parsers.apache import ApacheParser
from parsers.fields import LEVELS
from parsers.jsonlines import JsonParser
from parsers.logfmt import LogfmtParser
from parsers.raw import RawParser
from parsers.syslog3164 import Syslog3164Parser
from parsers.syslog5424 import Syslog5424Parser

# PARSER_FUZZ_SCALE=50 multiplies the examples for a deep local run; CI keeps it quick.
SCALE = int(os.environ.get("PARSER_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ROUND_TRIP = settings(max_examples=200 * SCALE, deadline=None)

ALL_PARSERS: list[LogParser] = [
    JsonParser(),
    ApacheParser(),
    Syslog5424Parser(),
    Syslog3164Parser(),
    LogfmtParser(),
    RawParser(),
    RegexParser("fuzz", r"^(?P<timestamp>\S+) (?P<level>\w+) (?P<message>.*)$", timeout_ms=20),
]
EXAMPLES = [entry["example"] for entry in list_formats()]
# The characters every format's syntax turns on, plus NUL, BOM and a non-ASCII letter.
SYNTAX = st.text(alphabet=list('<>[]{}"=\\ :-/.,T0123456789abcJanOct\x00\ufeff\t\n\r\xe9'))


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    """A real example line with a slice replaced: gets deep into each parser."""
    line = draw(st.sampled_from(EXAMPLES))
    start = draw(st.integers(0, len(line)))
    end = draw(st.integers(start, len(line)))
    return line[:start] + draw(st.one_of(SYNTAX, st.text(max_size=5))) + line[end:]


ANY_TEXT = st.one_of(st.text(), SYNTAX, mutated_examples())


def _well_formed(fmt: str, parsed: object) -> None:
    assert fmt in get_factory().names()
    assert isinstance(parsed.message, str)
    assert parsed.level is None or parsed.level in LEVELS
    assert parsed.timestamp is None or parsed.timestamp.tzinfo is not None
    assert isinstance(parsed.metadata, dict)


@FUZZ
@given(ANY_TEXT)
def test_no_parser_raises(text: str) -> None:
    for parser in ALL_PARSERS:
        result = parser.parse(text)
        assert result is None or isinstance(result.message, str)


@FUZZ
@given(ANY_TEXT)
def test_detection_is_stable_and_agrees_with_forced_parse(text: str) -> None:
    fmt = detect_format(text)
    assert detect_format(text) == fmt
    detected = parse_line(text)
    _well_formed(*detected)
    assert parse_line(text, fmt=fmt) == detected
    assert detected[0] == (fmt or "raw")
    if fmt is not None:
        assert parse_line(text, fmt=fmt)[0] == fmt


ALIASES = {*TIMESTAMP_KEYS, *LEVEL_KEYS, *MESSAGE_KEYS, *SOURCE_KEYS, *APPLICATION_KEYS}
# NUL and lone surrogates are stored as U+FFFD by design: left out of the round trip.
NO_NUL = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | NO_NUL,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NO_NUL, children, max_size=4),
    max_leaves=10,
)
EXTRA = st.dictionaries(
    NO_NUL.filter(lambda key: key not in ALIASES and key != "metadata"), JSON_VALUES, max_size=6
)


@ROUND_TRIP
@given(message=NO_NUL, extra=EXTRA, ascii_only=st.booleans())
def test_json_round_trip(message: str, extra: dict, ascii_only: bool) -> None:
    line = json.dumps({"message": message, **extra}, ensure_ascii=ascii_only)
    fmt, parsed = parse_line(line)
    assert fmt == "json"
    assert parsed.message == message
    assert parsed.metadata == extra


TOKEN = st.from_regex(r"[A-Za-z0-9._@-]{1,12}", fullmatch=True).filter(lambda s: s != "-")
HOSTNAME = st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z]{2,8}){1,2}", fullmatch=True)
CLIENT = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str), HOSTNAME)
# Quoted fields may hold quotes and backslashes (escaped on the way in), never newlines.
QUOTED_TEXT = st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=40).filter(
    lambda s: s != "-"
)
OFFSET = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
WHEN = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=OFFSET
).map(lambda d: d.replace(microsecond=0))
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _clf_time(when: datetime) -> str:
    minutes = int(when.utcoffset().total_seconds() // 60)
    sign, minutes = ("-", -minutes) if minutes < 0 else ("+", minutes)
    return (
        f"{when.day:02d}/{MONTH_NAMES[when.month - 1]}/{when.year:04d}:"
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}"  # noqa: E501
    )


@ROUND_TRIP
@given(
    client=CLIENT,
    user=st.one_of(st.none(), TOKEN),
    when=WHEN,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]),
    path=st.from_regex(r'/[A-Za-z0-9/._~%?=&+"-]{0,30}', fullmatch=True),
    protocol=st.sampled_from(["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"]),
    status=st.integers(100, 599),
    size=st.one_of(st.none(), st.integers(0, 10**9)),
    combined=st.one_of(st.none(), st.tuples(st.one_of(st.none(), QUOTED_TEXT), QUOTED_TEXT)),
)
def test_apache_round_trip(
    client, user, when, method, path, protocol, status, size, combined
) -> None:
    request = _escape(f"{method} {path} {protocol}")
    line = (
        f'{client} - {user or "-"} [{_clf_time(when)}] "{request}" {status}'
        f" {'-' if size is None else size}"
    )
    if combined is not None:
        referrer, agent = combined
        line += f' "{"-" if referrer is None else _escape(referrer)}" "{_escape(agent)}"'
    fmt, parsed = parse_line(line)
    assert fmt == "apache"
    meta = parsed.metadata
    assert (meta["client"], meta["user"], meta["method"], meta["path"]) == (
        client,
        user,
        method,
        path,
    )
    assert (meta["protocol"], meta["status"], meta["bytes"]) == (protocol, status, size)
    assert parsed.timestamp == when
    assert parsed.timestamp.utcoffset() == when.utcoffset()
    assert parsed.level == ("ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO")
    if combined is not None:
        assert (meta["referrer"], meta["user_agent"]) == combined
    assert parsed.timestamp.astimezone(UTC) == when.astimezone(UTC)
