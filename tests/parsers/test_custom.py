"""Custom regex formats: named groups, the JSON spec, and the time limit on a match."""

from __future__ import annotations

import json
import time

import pytest

from parsers import ParserFactory, RegexParser, build_custom_parsers
from tests.parsers.expect import check, utc

APP_LOG = (
    r"^(?P<timestamp>\S+ \S+) \[(?P<level>\w+)\] (?P<application>[\w.-]+)@(?P<source>\S+)"
    r" (?:req=(?P<request_id>\w+) )?(?P<message>.*)$"
)
JAVA = r"^(?P<timestamp>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) (?P<level>[A-Z]+) +(?P<message>.*)$"

CASES = [
    (
        APP_LOG,
        None,
        "2024-05-01 12:00:00 [WARN] billing@web-1 req=ab12 card declined",
        {
            "timestamp": utc(2024, 5, 1, 12),
            "level": "WARN",
            "application": "billing",
            "source": "web-1",
            "message": "card declined",
            "metadata": {"request_id": "ab12"},
        },
    ),
    (
        # A group that did not take part is None in metadata, not missing.
        APP_LOG,
        None,
        "2024-05-01 12:00:00 [info] api@web-2 ok",
        {"level": "INFO", "message": "ok", "metadata": {"request_id": None}},
    ),
    (
        APP_LOG,
        None,
        "not-a-time 12:00 [LOUD] api@web-2 what",
        {
            "timestamp": None,
            "level": None,
            "metadata": {
                "request_id": None,
                "level_raw": "LOUD",
                "timestamp_raw": "not-a-time 12:00",
            },
        },
    ),
    (
        JAVA,
        "%Y/%m/%d %H:%M:%S",
        "2024/05/01 12:00:00 ERROR  Connection refused",
        {"timestamp": utc(2024, 5, 1, 12), "level": "ERROR", "message": "Connection refused"},
    ),
    (
        # No message group: the whole line is the message.
        r"user=(?P<user>\w+)",
        None,
        "login ok user=alice from 203.0.113.4",
        {"message": "login ok user=alice from 203.0.113.4", "metadata": {"user": "alice"}},
    ),
]


@pytest.mark.parametrize(("pattern", "ts_format", "line", "expected"), CASES)
def test_named_groups(pattern: str, ts_format: str | None, line: str, expected: dict) -> None:
    parser = RegexParser("app", pattern, timestamp_format=ts_format)
    check(parser.parse(line), expected)


def test_no_match_is_none() -> None:
    assert RegexParser("app", JAVA).parse("something else") is None


def test_build_from_spec() -> None:
    spec = json.dumps(
        [
            {
                "name": "java",
                "pattern": JAVA,
                "example": "2024/05/01 12:00:00 INFO started",
                "timestamp_format": "%Y/%m/%d %H:%M:%S",
                "description": "Our Java services",
            },
            {"name": "kv", "pattern": r"^K (?P<message>.*)$", "timeout_ms": 10},
        ]
    )
    java, kv = build_custom_parsers(spec)
    assert (java.name, java.description, kv.name) == ("java", "Our Java services", "kv")
    assert kv.timeout == pytest.approx(0.01)
    assert java.parse(java.example).timestamp == utc(2024, 5, 1, 12)


@pytest.mark.parametrize("spec", ["", "   ", "[]"])
def test_empty_spec(spec: str) -> None:
    assert build_custom_parsers(spec) == []


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("[{", "not valid JSON"),
        ('{"name": "a"}', "JSON list"),
        ('["a"]', "#0 must be an object"),
        ('[{"name": "a"}]', "'name' and 'pattern'"),
        ('[{"name": "broken", "pattern": "(unclosed"}]', "'broken': invalid pattern"),
        ('[{"name": "a", "pattern": "x"}, {"name": "a", "pattern": "y"}]', "defined twice"),
        ('[{"name": "json", "pattern": "x"}]', "built-in"),
        ('[{"name": "has space", "pattern": "x"}]', "must be 1-64"),
        ('[{"name": "a", "pattern": "^x$", "example": "y"}]', "does not match its example"),
        ('[{"name": "a", "pattern": "x", "timeout_ms": "fast"}]', "timeout_ms must be a number"),
        ('[{"name": "a", "pattern": "x", "timeout_ms": 0}]', "timeout_ms must be positive"),
        ('[{"name": "a", "pattern": "x", "timestamp_format": 5}]', "must be a string"),
    ],
)
def test_bad_spec_names_the_problem(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        build_custom_parsers(spec)


@pytest.mark.parametrize(
    ("pattern", "line"),
    [
        (r"(a+)+$", "a" * 5000 + "!"),
        (r"^(\w+\s?)*$", "a" * 5000 + "!"),
        (r"(a|aa)+$", "a" * 60 + "!"),
    ],
)
def test_catastrophic_pattern_is_cut_off(pattern: str, line: str) -> None:
    parser = RegexParser("slow", pattern, timeout_ms=50)
    start = time.perf_counter()
    assert parser.parse(line) is None
    assert time.perf_counter() - start < 1.0
    assert parser.timeouts == 1


def test_timed_out_line_falls_through_to_other_formats() -> None:
    factory = ParserFactory()
    factory.add_parser(RegexParser("slow", r"(a|aa)+$", timeout_ms=20))
    fmt, parsed = factory.parse("a" * 60 + "! a=1 b=2")
    assert fmt == "logfmt"
    assert parsed.metadata["a"] == "1"
