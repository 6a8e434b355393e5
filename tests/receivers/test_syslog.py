"""The syslog listener (the Procfile's `syslog` process) with real senders: util-linux
`logger` over TCP (octet-counted and newline-framed) and UDP, RFC 5424 and 3164, and
Python's SysLogHandler."""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import wait_for
from tests.receivers.conftest import stored_rows
from tests.receivers.syslogstack import start_syslog


@pytest.fixture
def syslog(settings, tmp_path):
    """The listener's port; stopped after the test."""
    stack, port = start_syslog(settings, tmp_path)
    yield port
    stack.stop_all()


def rows_when(settings, db, count: int) -> list[dict]:
    """The stored rows once `count` of them are there."""
    found = []

    def enough():
        found[:] = stored_rows(settings, db)
        return len(found) >= count

    wait_for(enough, timeout=15, interval=0.2)
    return found


def logger(port: int, *args: str) -> None:
    env = {**os.environ, "TZ": "UTC"}
    command = ["logger", "-n", "127.0.0.1", "-P", str(port), *args]
    subprocess.run(command, check=True, env=env, timeout=10)


def close_to_now(stamp: datetime, slack: float = 5) -> bool:
    return abs(stamp - datetime.now(UTC)) < timedelta(seconds=slack)


@pytest.mark.parametrize(
    ("transport", "framing"),
    [(["--tcp", "--octet-count"], "octet"), (["--tcp"], "newline"), (["--udp"], "udp")],
)
def test_logger_rfc5424(syslog, settings, db, transport, framing):
    logger(
        syslog,
        *transport,
        "--rfc5424",
        "-p",
        "local3.warning",
        "-t",
        "billing",
        "--msgid",
        "PAY",
        "--sd-id",
        "order@32473",
        "--sd-param",
        'id="1234"',
        f"card declined via {framing}",
    )
    (row,) = rows_when(settings, db, 1)
    assert close_to_now(row["timestamp"])
    assert (row["level"], row["application"]) == ("WARN", "billing")
    assert row["source"] == socket.gethostname()
    assert row["message"] == f"card declined via {framing}"
    meta = row["metadata"]
    assert meta["structured_data"]["order@32473"] == {"id": "1234"}
    assert {k: meta[k] for k in ("facility", "facility_name", "severity", "version", "msgid")} == {
        "facility": 19,
        "facility_name": "local3",
        "severity": 4,
        "version": 1,
        "msgid": "PAY",
    }
    assert meta["procid"] is None or meta["procid"].isdigit()
    assert meta["format"] == "syslog5424"
    assert meta["transport"] == ("udp" if framing == "udp" else "tcp")
    assert meta["peer"].startswith("127.0.0.1:")


@pytest.mark.parametrize("transport", [["--tcp"], ["--tcp", "--octet-count"], ["--udp"]])
def test_logger_rfc3164(syslog, settings, db, transport):
    logger(syslog, *transport, "--rfc3164", "-p", "auth.err", "-t", "su", "'su root' failed")
    (row,) = rows_when(settings, db, 1)
    assert close_to_now(row["timestamp"])  # second precision, sent as UTC (TZ=UTC)
    assert (row["level"], row["application"], row["message"]) == ("ERROR", "su", "'su root' failed")
    assert row["source"] == socket.gethostname()
    meta = row["metadata"]
    assert (meta["facility"], meta["facility_name"], meta["severity"]) == (4, "auth", 3)
    assert meta["format"] == "syslog3164"
    assert meta["peer"].startswith("127.0.0.1:")


@pytest.mark.parametrize("socktype", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_python_sysloghandler(syslog, settings, db, socktype):
    handler = logging.handlers.SysLogHandler(
        address=("127.0.0.1", syslog),
        facility=logging.handlers.SysLogHandler.LOG_LOCAL0,
        socktype=socktype,
    )
    handler.setFormatter(
        logging.Formatter("%(asctime)s web-7 checkout[42]: %(message)s", "%b %d %H:%M:%S")
    )
    handler.formatter.converter = time.gmtime  # RFC 3164 stamps carry no zone: send UTC
    log = logging.getLogger(f"sluice.test.syslog.{socktype}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        log.info("first")
        log.error("second")
    finally:
        log.removeHandler(handler)
        handler.close()
    first, second = rows_when(settings, db, 2)
    for row, (level, message, severity) in zip(
        (first, second), (("INFO", "first", 6), ("ERROR", "second", 3)), strict=True
    ):
        assert close_to_now(row["timestamp"])
        assert (row["level"], row["source"], row["application"]) == (level, "web-7", "checkout")
        assert row["message"] == message
        meta = row["metadata"]
        assert (meta["facility_name"], meta["severity"], meta["pid"]) == ("local0", severity, 42)
        assert meta["transport"] == ("tcp" if socktype == socket.SOCK_STREAM else "udp")


def test_bad_frames_cost_only_themselves(syslog, settings, db):
    good = b"<13>1 2026-11-28T10:00:00Z h a - - - kept"
    big = b"<13>1 - h a - - - " + b"x" * 70_000
    with socket.create_connection(("127.0.0.1", syslog)) as s:
        s.sendall(b"%d %s%d %s%d %s" % (len(good), good, len(big), big, len(good), good))
        s.sendall(b"99 <13>1 - h a - - - cut short")
    rows = rows_when(settings, db, 2)
    assert [r["message"] for r in rows] == ["kept", "kept"]
    assert rows[0]["timestamp"] == datetime(2026, 11, 28, 10, tzinfo=UTC)
