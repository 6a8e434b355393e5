"""Small helpers shared by tests."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests
from sqlalchemy import text

from app.pipeline.jsoncodec import dumps


def count_logs(conn, where: str = "true", **params) -> int:
    """How many rows of `logs` match `where` (fresh snapshot each call)."""
    conn.rollback()
    return conn.execute(text(f"SELECT count(*) FROM logs WHERE {where}"), params).scalar_one()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


def post(server: str, logs: list[dict], session=None) -> list[int]:
    """POST logs to /data/ (stored and published now); return their ids."""
    response = (session or requests).post(
        f"{server}/data/",
        data=dumps(logs),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["ids"]


def redis_url_without(r, settings, name: str, command: str) -> str:
    """A Redis URL for a new ACL user `name` allowed everything but `command` (a real
    refusal from the real server, for fault tests); `drop_user(r, name)` removes it."""
    r.acl_setuser(
        name,
        enabled=True,
        nopass=True,
        keys=["*"],
        channels=["*"],
        commands=["+@all", f"-{command}"],
    )
    parts = urlsplit(settings.redis_url)
    return parts._replace(netloc=f"{name}:x@{parts.hostname}:{parts.port or 6379}").geturl()


def assert_quick_log_is_the_schema_or_nothing(data) -> None:
    """`record.quick_log(data)` is what `LogSchema` loads from `data`, or None: it never
    takes what the schema refuses, nor gives another log."""
    from marshmallow import ValidationError

    from app.pipeline.record import log_schema, quick_log

    quick = quick_log(data)
    try:
        loaded = log_schema.load(data)
    except ValidationError as exc:
        assert quick is None, f"quick check took what the schema refuses: {exc.messages}"
    else:
        assert quick is None or quick == loaded
