"""A raw HTTP/1.1 client: sends exactly the bytes it is given, so header values may carry
CR, LF or NUL and Content-Length may lie (real clients refuse to), and reads the answer
with the standard library's response parser."""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def send(host: str, port: int, head: bytes, body: bytes, timeout: float = 30) -> Answer:
    """Write `head` (request line and headers, CRLF-terminated, without the blank line)
    then the body; half-close so a server waiting for a longer body sees its end."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(head + b"\r\n" + body)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered (and closed) before reading all of it: read that
        response = http.client.HTTPResponse(sock)
        response.begin()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


def head(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The request line and headers, as given (no validation, no normalisation)."""
    lines = [f"{method} {path} HTTP/1.1".encode()]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n"
