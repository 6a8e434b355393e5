"""rsyslog forwarding to Sluice with omfwd (octet-counted TCP), as a site would set it up.

The test runs its own rsyslogd (Debian's, installed by `make test` via
scripts/install-rsyslog.sh) with its own configuration and work directory: it listens
on a TCP port of its own, and `logger` sends to it."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess

import pytest

from tests.receivers.syslogstack import free_udp_and_tcp_port, start_syslog, wait_listening
from tests.receivers.test_syslog import close_to_now, logger, rows_when

CONFIG = """
global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" port="{inbound}" address="127.0.0.1")
action(type="omfwd" target="127.0.0.1" port="{sluice}" protocol="tcp"
       TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
"""


@pytest.fixture
def rsyslogd(settings, tmp_path):
    """An rsyslogd forwarding to a Sluice listener; yields the port rsyslog listens on."""
    if shutil.which("rsyslogd") is None:
        pytest.fail("rsyslogd is missing: run scripts/install-rsyslog.sh (make test does)")
    stack, sluice = start_syslog(settings, tmp_path)
    inbound = free_udp_and_tcp_port()
    work = tmp_path / "rsyslog"
    work.mkdir()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(CONFIG.format(work=work, inbound=inbound, sluice=sluice))
    proc = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "rsyslogd.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    try:
        wait_listening(inbound)
        yield inbound
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        stack.stop_all()


def test_rsyslog_omfwd_octet_counted(rsyslogd, settings, db):
    logger(rsyslogd, "--tcp", "--rfc5424", "-p", "daemon.err", "-t", "nginx", "upstream timed out")
    logger(rsyslogd, "--tcp", "--rfc3164", "-p", "mail.info", "-t", "postfix", "queue run")
    first, second = sorted(rows_when(settings, db, 2), key=lambda row: row["application"])
    host = socket.gethostname()
    for row in (first, second):
        assert close_to_now(row["timestamp"])
        assert row["source"] == host
        assert row["metadata"]["format"] == "syslog5424"  # rsyslog re-sends as RFC 5424
        assert row["metadata"]["transport"] == "tcp"
        assert row["metadata"]["peer"].startswith("127.0.0.1:")
    assert (first["application"], first["level"], first["message"]) == (
        "nginx",
        "ERROR",
        "upstream timed out",
    )
    assert (first["metadata"]["facility_name"], first["metadata"]["severity"]) == ("daemon", 3)
    # rsyslog keeps the space after a BSD tag's colon as part of MSG (its documented
    # quirk; templates use `sp-if-no-1st-sp` for it) and forwards it; Sluice stores MSG as is.
    assert (second["application"], second["level"], second["message"]) == (
        "postfix",
        "INFO",
        " queue run",
    )
    assert second["metadata"]["facility_name"] == "mail"
