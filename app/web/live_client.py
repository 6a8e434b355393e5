"""The send path of one live WebSocket client: frames written once encoded, never blocking
the hub, and a client that stops reading costs only its own frames, then its connection.

Every frame this side sends is built here (`text_frame`, RFC 6455: unmasked, unfragmented,
uncompressed) and every write to the socket goes through one `LiveClient`, so frames never
interleave. simple-websocket still does the handshake, reads the client's messages and
answers pings; its own writes (pong, ping, close) are routed through the same client by
`_Guarded`. The hub offers each batch's one encoded frame to every client of that filter:

- nothing buffered and no write under way: the hub writes it at once, without blocking
  (the usual case: one non-blocking `send` per client, no wake-up of its greenlet);
- otherwise (a write under way, a catch-up, the rest of a frame the kernel did not take):
  it waits in the client's bounded buffer (`WS_BUFFER` frames) for the client's own
  greenlet; past the bound it is dropped for this client only, and counted;
- a frame the client does not take within `WS_SEND_TIMEOUT` closes its connection.

A permessage-deflate extension a browser negotiates is left unused: uncompressed messages
are always allowed (RFC 7692, section 6), and compressing would be per-client work.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections import deque

from app.pipeline import counters, histograms, jsoncodec
from app.pipeline.connections import redis_client
from app.pipeline.fanout import RESYNC, Batch, Subscriber


class SendTimeout(TimeoutError):
    """The client took no frame for WS_SEND_TIMEOUT seconds (an OSError, so simple-websocket's
    own thread treats it as a lost connection too)."""


def text_frame(payload: bytes) -> bytes:
    """`payload` (UTF-8 JSON) as one server-to-client text frame (FIN, opcode 1, no mask)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return head + payload


def message_frame(message: dict) -> bytes:
    """A protocol message (`{"type": ...}`) as a text frame."""
    return text_frame(jsoncodec.dumps(message))


class LiveClient(Subscriber):
    """One client's side of the hub: its socket, bounded buffer, drop count and position
    (`last`, the largest id sent). `lock` guards the state; `writer` is held by whoever
    is writing to the socket, so the hub only ever tries it and never waits. The hub
    writes directly only while `live` (not during a catch-up) and nothing is waiting."""

    def __init__(self, ws, filters, settings) -> None:
        super().__init__(filters)
        self.ws, self.settings = ws, settings
        # gevent's cooperative socket wraps the OS socket as `_sock`; calls on that never
        # yield, which is what a non-blocking write from the hub needs.
        self.raw = getattr(ws.sock, "_sock", ws.sock)
        self.lock = threading.Lock()
        self.writer = threading.Lock()
        self.wake = threading.Event()
        self.backlog: deque[Batch] = deque()
        self.notices: deque[dict] = deque()
        self.pending: memoryview | None = None  # the rest of a frame the hub began
        self.dropped = 0
        self.resync = False
        self.live = False
        self.closed = False
        self.last = 0
        ws.sock = _Guarded(ws.sock, self)

    @property
    def connected(self) -> bool:
        return self.ws.connected and not self.closed

    # ------------------------------------------------------------ the hub's side

    def offer(self, item) -> bool:
        """Write a batch's frame now if this client is keeping up, else buffer or drop it;
        True when it went out now. Never blocks, never raises."""
        with self.lock:
            if self.closed:
                return False
            if item is RESYNC:
                self.resync = True
            elif item.last_id <= self.last:
                return False  # already sent (by the catch-up)
            elif (
                self.live
                and not self.backlog
                and self.pending is None
                and item.first_id > self.last
            ):
                if self.writer.acquire(blocking=False):
                    try:
                        return self._send_now(item)
                    finally:
                        self.writer.release()
                self.backlog.append(item)
            elif len(self.backlog) < self.settings.ws_buffer:
                self.backlog.append(item)
            else:
                self.dropped += len(item.logs)
        self.wake.set()
        return False

    def _send_now(self, batch: Batch) -> bool:
        try:
            sent = self.raw.send(batch.frame, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.closed = True
            self.wake.set()
            return False
        self.last = batch.last_id
        if sent < len(batch.frame):
            self.pending = memoryview(batch.frame)[sent:]
            self.wake.set()
        return True

    def notify(self, message: dict) -> None:
        """Queue a protocol message for the client's greenlet (from the reader thread)."""
        with self.lock:
            self.notices.append(message)
        self.wake.set()

    # ------------------------------------------------------------ the client's greenlet

    def go_live(self, last: int) -> None:
        """The catch-up up to `last` is sent: the hub may write directly again."""
        with self.lock:
            self.last = max(self.last, last)
            self.live = True
        self.wake.set()

    def send(self, message: dict) -> None:
        """Send one protocol message (blocking, within WS_SEND_TIMEOUT)."""
        self.write(message_frame(message))

    def send_logs(self, logs: list[dict]) -> None:
        """Send stored logs (a catch-up page), and move `last` past them."""
        if logs:
            self.send({"type": "logs", "logs": logs})
            with self.lock:
                self.last = max(self.last, logs[-1]["id"])

    def write(self, data: bytes) -> None:
        """Write `data` after anything the hub began; raises SendTimeout when the client
        takes none of it within WS_SEND_TIMEOUT."""
        if not self.writer.acquire(timeout=self.settings.ws_send_timeout):
            raise SendTimeout("another write to this client did not finish in time")
        try:
            self._write_locked(data)
        finally:
            self.writer.release()

    def _write_locked(self, data: bytes) -> None:
        deadline = time.monotonic() + self.settings.ws_send_timeout
        with self.lock:
            rest, self.pending = self.pending, None
        if rest is not None:
            _write_all(self.raw, rest, deadline)
        if data:
            _write_all(self.raw, memoryview(data), deadline)

    def flush(self):
        """Send what waits (notices, a drop report, buffered batches), one item per hold
        of the writer lock. Returns RESYNC when a catch-up must come first (the hub stops
        writing directly until `go_live`), else whether anything was sent."""
        sent = False
        while True:
            if not self.writer.acquire(timeout=self.settings.ws_send_timeout):
                raise SendTimeout("another write to this client did not finish in time")
            try:
                item = self._next()
                if item is None:
                    return sent
                if item is RESYNC:
                    return RESYNC
                if isinstance(item, Batch):
                    self._send_batch(item)
                else:
                    self._write_locked(message_frame(item) if item else b"")
            finally:
                self.writer.release()
            sent = True
            if isinstance(item, dict) and item.get("type") == "dropped":
                r = redis_client(self.settings.redis_url)
                counters.add(r, self.settings, live_dropped=item["count"])

    def _next(self):
        """The next thing to send, taken under the writer lock (so the hub cannot send a
        later batch before it), or None when nothing waits."""
        with self.lock:
            if self.notices:
                return self.notices.popleft()
            if self.resync:
                self.resync, self.live = False, False
                return RESYNC
            if self.dropped:
                dropped, self.dropped = self.dropped, 0
                return {"type": "dropped", "count": dropped}
            if self.backlog:
                return self.backlog.popleft()
            if self.pending is not None:
                return {}  # only the rest of the hub's frame to finish
            self.wake.clear()
            return None

    def _send_batch(self, batch: Batch) -> None:
        """A buffered batch: the shared frame, or its unsent tail re-encoded."""
        with self.lock:
            last = self.last
        if batch.last_id <= last:
            return
        if batch.first_id > last:
            self._write_locked(batch.frame)
        else:
            tail = [entry for entry in batch.logs if entry["id"] > last]
            self._write_locked(message_frame({"type": "logs", "logs": tail}))
        with self.lock:
            self.last = max(self.last, batch.last_id)
        if isinstance(batch.published, float):
            r = redis_client(self.settings.redis_url)
            delay = time.time() - batch.published
            histograms.process_buffer.add(r, self.settings, "live_fanout_seconds", delay)

    def abort(self) -> None:
        """Cut the connection without a close frame (the client is not reading)."""
        with self.lock:
            self.closed = True
        with contextlib.suppress(OSError):  # already gone
            self.raw.shutdown(socket.SHUT_RDWR)


def _write_all(raw, data: memoryview, deadline: float) -> None:
    """Write all of `data` to a socket, waiting for room (cooperatively under gevent,
    whose `select.poll` replaces the standard one) until `deadline`."""
    poller = None
    while data:
        try:
            data = data[raw.send(data, socket.MSG_DONTWAIT) :]
            continue
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            raise SendTimeout("the client took no data in WS_SEND_TIMEOUT")
        if poller is None:
            poller = select.poll()
            poller.register(raw.fileno(), select.POLLOUT)
        poller.poll(left * 1000)


class _Guarded:
    """simple-websocket's view of the socket: its writes go through the client's writer
    lock (after any frame the hub began); reads and the rest go to the socket."""

    def __init__(self, sock, client: LiveClient) -> None:
        self._sock, self._client = sock, client

    def send(self, data: bytes) -> int:
        self._client.write(data)
        return len(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)
