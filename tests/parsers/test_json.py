"""JSON Lines: field aliases, metadata, levels and timestamps, table-driven."""

from __future__ import annotations

from datetime import timedelta

import pytest

from parsers import parse_line
from parsers.jsonlines import JsonParser
from tests.parsers.expect import check, utc

CASES = [
    (
        '{"timestamp": "2024-05-01T12:00:00Z", "level": "info", "message": "started",'
        ' "source": "web-1", "application": "api"}',
        {
            "message": "started",
            "timestamp": utc(2024, 5, 1, 12),
            "level": "INFO",
            "source": "web-1",
            "application": "api",
            "metadata": {},
        },
    ),
    (
        '{"time": "2024-05-01T12:00:00.250+02:00", "severity": "WARNING", "msg": "slow",'
        ' "host": "db-1", "app": "billing", "elapsed_ms": 812}',
        {
            "message": "slow",
            "timestamp": utc(2024, 5, 1, 10, 0, 0, 250000),
            "offset": timedelta(hours=2),
            "level": "WARN",
            "source": "db-1",
            "application": "billing",
            "metadata": {"elapsed_ms": 812},
        },
    ),
    (
        '{"@timestamp": "2024-05-01T12:00:00Z", "lvl": "err", "log": "boom",'
        ' "hostname": "ip-10-0-0-1", "service": "worker"}',
        {"level": "ERROR", "message": "boom", "source": "ip-10-0-0-1", "application": "worker"},
    ),
    (
        '{"ts": 1714564800.5, "level": "debug", "msg": "tick", "logger": "app.scheduler"}',
        {
            "timestamp": utc(2024, 5, 1, 12, 0, 0, 500000),
            "level": "DEBUG",
            "application": "app.scheduler",
            "metadata": {},
        },
    ),
    (
        # pino: numeric level, epoch milliseconds, pid and hostname.
        '{"level":50,"time":1714564800000,"pid":4242,"hostname":"node-1","msg":"db down"}',
        {
            "level": "ERROR",
            "timestamp": utc(2024, 5, 1, 12),
            "source": "node-1",
            "message": "db down",
            "metadata": {"pid": 4242},
        },
    ),
    (
        '{"message": "first", "msg": "second", "log": "third"}',
        {"message": "first", "metadata": {"msg": "second", "log": "third"}},
    ),
    (
        '{"msg": "x", "level": "loud", "severity": "error"}',
        {"level": None, "metadata": {"level_raw": "loud", "severity": "error"}},
    ),
    (
        '{"msg": "x", "level": " Error "}',
        {"level": "ERROR", "metadata": {}},
    ),
    (
        '{"event": "user.login", "user_id": 7}',
        {
            "message": '{"event": "user.login", "user_id": 7}',
            "metadata": {"event": "user.login", "user_id": 7},
        },
    ),
    (
        '{"msg": "req", "http": {"status": 500, "headers": {"x-id": "a"}}, "tags": ["a", "b"]}',
        {"metadata": {"http": {"status": 500, "headers": {"x-id": "a"}}, "tags": ["a", "b"]}},
    ),
    (
        # The `metadata` object is merged; its keys win over top-level extras.
        '{"msg": "x", "metadata": {"k": 1, "user": "inner"}, "user": "outer", "z": true}',
        {"metadata": {"k": 1, "user": "inner", "z": True}},
    ),
    (
        '{"msg": "x", "metadata": "not an object"}',
        {"metadata": {"metadata": "not an object"}},
    ),
    (
        '{"msg": "x", "timestamp": "yesterday"}',
        {"timestamp": None, "metadata": {"timestamp_raw": "yesterday"}},
    ),
    (
        '{"msg": 42, "level": "info"}',
        {"message": "42", "level": "INFO"},
    ),
    (
        '{"msg": {"text": "structured"}}',
        {"message": '{"text":"structured"}', "metadata": {}},
    ),
    (
        '{"message": null, "msg": "b"}',
        {"message": "b", "metadata": {"message": None}},
    ),
    (
        # ECS: `host` is an object, not a name; it stays in metadata as sent.
        '{"message": "x", "host": {"name": "h1"}, "service": {"name": "svc"}}',
        {
            "source": None,
            "application": None,
            "metadata": {"host": {"name": "h1"}, "service": {"name": "svc"}},
        },
    ),
    (
        '{"msg": "caf\\u00e9 \\"quoted\\" \\ud83d\\ude00", "k": "tab\\there"}',
        {"message": 'café "quoted" 😀', "metadata": {"k": "tab\there"}},
    ),
    (
        '  {"msg": "padded"}\r\n',
        {"message": "padded"},
    ),
    (
        '{"msg": "x", "ratio": NaN, "big": Infinity}',
        {"metadata": {"ratio": "NaN", "big": "Infinity"}},
    ),
    (
        '{"msg": "nul\\u0000here", "bad": "\\udc80"}',
        {"message": "nul\ufffdhere", "metadata": {"bad": "\ufffd"}},
    ),
    (
        "{}",
        {"message": "{}", "level": None, "metadata": {}},
    ),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_json_fields(line: str, expected: dict) -> None:
    fmt, parsed = parse_line(line)
    assert fmt == "json"
    check(parsed, expected)


@pytest.mark.parametrize(
    "line",
    [
        "[1, 2, 3]",
        "42",
        '"just a string"',
        '{"broken": ',
        '{"a": 1} trailing',
        "{not json at all}",
        "[" * 5000,
        '{"a":' * 5000,
    ],
)
def test_not_a_json_object(line: str) -> None:
    assert JsonParser().parse(line) is None
