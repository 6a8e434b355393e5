"""The record shapes common senders write, with what the JSON mapping reads from each.

One table for the pure mapping test (tests/parsers/test_jsonmap.py) and the ingest test
that sends each shape through both doors (tests/test_json_senders.py).
"""

from __future__ import annotations

from tests.parsers.expect import utc

# (sender, record as sent, the fields found, the metadata left over)
SENDERS = [
    (
        "docker json-file",
        {"log": "GET /health 200\n", "stream": "stdout", "time": "2024-05-01T12:00:00.123456789Z"},
        {"message": "GET /health 200", "timestamp": utc(2024, 5, 1, 12, 0, 0, 123456)},
        {"stream": "stdout"},
    ),
    (
        "shipper date (epoch float seconds)",
        {"date": 1714564800.25, "log": "worker started", "kubernetes": {"pod_name": "w-1"}},
        {"message": "worker started", "timestamp": utc(2024, 5, 1, 12, 0, 0, 250000)},
        {"kubernetes": {"pod_name": "w-1"}},
    ),
    (
        "ECS, dotted keys",
        {
            "@timestamp": "2024-05-01T12:00:00.000Z",
            "log.level": "warn",
            "message": "disk almost full",
            "host.name": "web-1",
            "service.name": "billing",
            "ecs.version": "1.6.0",
        },
        {
            "message": "disk almost full",
            "timestamp": utc(2024, 5, 1, 12),
            "level": "WARN",
            "source": "web-1",
            "application": "billing",
        },
        {"ecs.version": "1.6.0"},
    ),
    (
        "ECS, nested log object",
        {
            "@timestamp": "2024-05-01T12:00:00.000Z",
            "message": "db timeout",
            "log": {"level": "error", "logger": "app.db"},
            "service.name": "billing",
        },
        {
            "message": "db timeout",
            "timestamp": utc(2024, 5, 1, 12),
            "level": "ERROR",
            "application": "billing",
        },
        {"log": {"logger": "app.db"}},
    ),
    (
        "bunyan",
        {
            "name": "api",
            "hostname": "node-1",
            "pid": 4242,
            "level": 30,
            "msg": "listening",
            "time": "2024-05-01T12:00:00.000Z",
            "v": 0,
        },
        {
            "message": "listening",
            "timestamp": utc(2024, 5, 1, 12),
            "level": "INFO",
            "source": "node-1",
        },
        {"name": "api", "pid": 4242, "v": 0},
    ),
    (
        "pino",
        {"level": 60, "time": 1714564800000, "pid": 4242, "hostname": "node-1", "msg": "db down"},
        {
            "message": "db down",
            "timestamp": utc(2024, 5, 1, 12),
            "level": "CRITICAL",
            "source": "node-1",
        },
        {"pid": 4242},
    ),
    (
        "msg + time in epoch milliseconds",
        {"msg": "tick", "time": 1714564800123, "app": "cron", "lvl": "debug"},
        {
            "message": "tick",
            "timestamp": utc(2024, 5, 1, 12, 0, 0, 123000),
            "level": "DEBUG",
            "application": "cron",
        },
        {},
    ),
    (
        "Sluice's own names",
        {
            "timestamp": "2024-05-01T14:00:00+02:00",
            "level": "warning",
            "source": "web-2",
            "application": "shop",
            "message": "slow checkout",
            "metadata": {"order": 7},
            "region": "eu",
        },
        {
            "message": "slow checkout",
            "timestamp": utc(2024, 5, 1, 12),
            "level": "WARN",
            "source": "web-2",
            "application": "shop",
        },
        {"order": 7, "region": "eu"},
    ),
]
