"""The syslog listener at the queue's cap, at SIGTERM, and over TLS."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import time

from app.pipeline import stream
from tests.helpers import wait_for
from tests.receivers.conftest import stored_rows
from tests.receivers.syslogstack import free_udp_and_tcp_port, start_syslog, wait_listening


def octet_frames(prefix: str, count: int) -> bytes:
    frames = []
    for i in range(count):
        frame = f"<14>1 2026-11-28T10:00:00Z h app - - - {prefix} {i}".encode()
        frames.append(b"%d %s" % (len(frame), frame))
    return b"".join(frames)


def test_full_queue_slows_tcp_loses_nothing_and_counts_udp_drops(settings, db, r, tmp_path):
    capped = settings.with_overrides(stream_maxlen=50)
    stack, port = start_syslog(capped, tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", port)) as tcp:
            tcp.sendall(octet_frames("tcp", 300))
            wait_for(lambda: r.xlen(settings.stream_name) == 50, timeout=10)
            time.sleep(0.3)  # the listener now holds the rest and refuses the queue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                for _ in range(5):
                    udp.sendto(b"<14>dropped while full", ("127.0.0.1", port))
            counter = f"{settings.key_prefix}:counters"
            wait_for(lambda: r.hget(counter, "syslog_udp_dropped") == b"5", timeout=10)
            assert r.xlen(settings.stream_name) == 50  # capped, never trimmed to make room
            found: list = []

            def all_stored():
                found[:] = stored_rows(settings, db)  # draining frees room, 50 at a time
                return len(found) >= 300

            wait_for(all_stored, timeout=30, interval=0.1)
        assert sorted(int(row["message"].split()[1]) for row in found) == list(range(300))
        assert all(row["message"].startswith("tcp") for row in found)
    finally:
        stack.stop_all()


def test_sigterm_enqueues_what_was_read(settings, db, r, tmp_path):
    stack, port = start_syslog(settings.with_overrides(stream_maxlen=20), tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", port)) as tcp:
            tcp.sendall(octet_frames("held", 100))
            wait_for(lambda: r.xlen(settings.stream_name) == 20, timeout=10)
            time.sleep(0.3)
            stack.signal("syslog", signal.SIGTERM)
            found: list = []

            def all_stored():
                found[:] = stored_rows(settings, db)
                return len(found) >= 100

            wait_for(all_stored, timeout=30, interval=0.1)
        wait_for(lambda: "syslog listener stopped" in stack.tail(), timeout=10)
        assert sorted(int(row["message"].split()[1]) for row in found) == list(range(100))
        assert stream.status(r, settings)["length"] <= 1
    finally:
        stack.stop_all()


def test_tls_rfc5425(settings, db, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    tls_port = free_udp_and_tcp_port()
    stack, _ = start_syslog(
        settings,
        tmp_path,
        SYSLOG_TLS_PORT=str(tls_port),
        SYSLOG_TLS_CERT=str(cert),
        SYSLOG_TLS_KEY=str(key),
    )
    try:
        wait_listening(tls_port)
        context = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection(("127.0.0.1", tls_port)) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(octet_frames("tls", 3))
        found: list = []
        wait_for(
            lambda: len(found.__setitem__(slice(None), stored_rows(settings, db)) or found) >= 3
        )
        assert [row["message"] for row in found] == ["tls 0", "tls 1", "tls 2"]
        assert {row["metadata"]["transport"] for row in found} == {"tls"}
        assert {row["application"] for row in found} == {"app"}
    finally:
        stack.stop_all()
