"""The Procfile's `syslog` process for one test, on its own ports."""

from __future__ import annotations

import socket
import time

from tests.stack import Stack, free_port


def free_udp_and_tcp_port() -> int:
    """A port free for both TCP and UDP (the listener takes both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def wait_listening(port: int, timeout: float = 20) -> None:
    """Until a TCP connection to `port` succeeds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def start_syslog(settings, workdir, **env) -> tuple[Stack, int]:
    """Start the `syslog` process; return the stack and its TCP/UDP port."""
    port = free_udp_and_tcp_port()
    stack = Stack(settings, workdir, SYSLOG_PORT=str(port), **env)
    stack.start("syslog")
    try:
        wait_listening(port)
    except AssertionError:
        stack.stop_all()
        raise AssertionError(stack.tail()) from None
    return stack, port
