"""Syslog over a byte stream (RFC 6587): octet counting or newline framing.

A connection's framing is detected once, from its first byte: a digit starts an octet
count (`123 <13>1 ...`, RFC 6587 3.4.1, what rsyslog's omfwd and `logger --octet-count`
send), anything else is a newline-framed line (3.4.2; a NUL ends a line too, as Python's
SysLogHandler sends). The same splitter reads Heroku's logplex bodies, always counted.

A bad frame never costs the frames after it: one over the size limit is skipped by its
count (or to the next newline), a malformed count skips to the next newline, and a frame
cut short by the end of input is reported, not guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass

# A message at the log's own limit (65,536 characters) plus a generous syslog header.
MAX_FRAME_BYTES = 65_536 + 2_048
_MAX_COUNT_DIGITS = 9


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that could not be taken, and why (an item's error, at its place)."""

    reason: str


class Framer:
    """Splits one connection's bytes into frames; `feed` as bytes arrive, `finish` at EOF."""

    def __init__(self, limit: int = MAX_FRAME_BYTES, octet_counted: bool | None = None) -> None:
        self.limit = limit
        self.octets = octet_counted  # None until the first byte says
        self.buf = bytearray()
        self.skip = 0  # bytes of an oversized counted frame still to discard
        self.skip_line = False  # discarding up to the next newline

    def feed(self, data: bytes) -> list[bytes | BadFrame]:
        """The frames (and bad frames) completed by `data`, in order."""
        self.buf += data
        out: list[bytes | BadFrame] = []
        while True:
            frame = self._next()
            if frame is None:
                return out
            out.append(frame)

    def finish(self) -> list[bytes | BadFrame]:
        """What is left at the end of input: a last unterminated line, or a cut frame."""
        rest, self.buf = bytes(self.buf), bytearray()
        if self.skip or self.skip_line or not rest.strip(b"\r\n\x00 "):
            return []
        if self.octets:
            count, _, body = rest.partition(b" ")
            if count.isdigit() and body:
                return [BadFrame(f"frame cut short: {len(body)} of {int(count)} bytes")]
            return [BadFrame("frame cut short: no complete octet count")]
        return [rest.rstrip(b"\r\n")]

    def _next(self) -> bytes | BadFrame | None:
        if not self._discard():
            return None
        while self.buf[:1] in (b"\n", b"\r", b" ", b"\x00"):  # separators between frames
            del self.buf[:1]
        if not self.buf:
            return None
        if self.octets is None:
            self.octets = self.buf[:1].isdigit()
        return self._counted() if self.octets else self._line()

    def _discard(self) -> bool:
        """Drop bytes of a frame being skipped; True once nothing is left to skip."""
        if self.skip:
            taken = min(self.skip, len(self.buf))
            del self.buf[:taken]
            self.skip -= taken
            return not self.skip
        if self.skip_line:
            end = self.buf.find(b"\n")
            if end < 0:
                self.buf.clear()
                return False
            del self.buf[: end + 1]
            self.skip_line = False
        return True

    def _counted(self) -> bytes | BadFrame | None:
        space = self.buf.find(b" ", 0, _MAX_COUNT_DIGITS + 1)
        if space < 0:
            if len(self.buf) <= _MAX_COUNT_DIGITS and self.buf.isdigit():
                return None  # the count itself is still arriving
            self.skip_line = True
            return BadFrame("malformed octet count")
        count = bytes(self.buf[:space])
        if not count.isdigit():
            self.skip_line = True
            return BadFrame(f"malformed octet count {count[:20]!r}")
        size = int(count)
        if size > self.limit:
            del self.buf[: space + 1]
            self.skip = size
            self._discard()
            return BadFrame(f"frame of {size} bytes is larger than the limit of {self.limit}")
        if len(self.buf) < space + 1 + size:
            return None
        frame = bytes(self.buf[space + 1 : space + 1 + size])
        del self.buf[: space + 1 + size]
        return frame.rstrip(b"\r\n")

    def _line(self) -> bytes | BadFrame | None:
        end = _line_end(self.buf, self.limit + 1)
        if end < 0:
            if len(self.buf) <= self.limit:
                return None
            self.skip_line = True
            return BadFrame(f"line longer than the limit of {self.limit} bytes")
        frame = bytes(self.buf[:end])
        del self.buf[: end + 1]
        return frame.rstrip(b"\r")


def _line_end(buf: bytearray, limit: int) -> int:
    """Where the first line ends: a newline, or a NUL (Python's SysLogHandler ends its
    TCP messages with NUL and nothing else); -1 when neither is in the first `limit`."""
    ends = [i for i in (buf.find(b"\n", 0, limit), buf.find(b"\x00", 0, limit)) if i >= 0]
    return min(ends, default=-1)


def split_body(body: bytes, limit: int = MAX_FRAME_BYTES) -> list[bytes | BadFrame]:
    """Every octet-counted frame of a whole body (logplex), bad ones in their places."""
    framer = Framer(limit, octet_counted=True)
    return framer.feed(body) + framer.finish()
