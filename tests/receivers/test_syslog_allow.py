"""Syslog has no key: SYSLOG_ALLOW decides which peers the listener takes frames from."""

from __future__ import annotations

import socket
import time

import pytest

from tests.receivers.conftest import stored_rows
from tests.receivers.syslogstack import start_syslog
from tests.receivers.test_syslog import logger, rows_when


@pytest.mark.parametrize("transport", [["--tcp", "--octet-count"], ["--udp"]])
def test_a_peer_outside_syslog_allow_is_refused(settings, db, tmp_path, transport):
    stack, port = start_syslog(settings, tmp_path, SYSLOG_ALLOW="10.0.0.0/8")
    try:
        for _ in range(3):
            logger(port, *transport, "from loopback")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"15 <13>1 - - - - - x")
            try:
                closed = conn.recv(1) == b""  # closed by the listener...
            except ConnectionResetError:
                closed = True  # ...or reset, as it closed with our bytes unread
            assert closed
        time.sleep(1)
        assert stored_rows(settings, db) == []
        assert "refused: not in SYSLOG_ALLOW" in (tmp_path / "syslog.log").read_text()
    finally:
        stack.stop_all()


def test_a_peer_inside_syslog_allow_is_taken(settings, db, tmp_path):
    stack, port = start_syslog(settings, tmp_path, SYSLOG_ALLOW="10.0.0.0/8,127.0.0.1/32")
    try:
        logger(port, "--tcp", "--octet-count", "from loopback")
        assert [row["message"] for row in rows_when(settings, db, 1)] == ["from loopback"]
    finally:
        stack.stop_all()
