"""The syslog listener: `python -m app.receivers.syslog_server` (Procfile `syslog`).

TCP and UDP on SYSLOG_PORT, TLS (RFC 5425) on SYSLOG_TLS_PORT when SYSLOG_TLS_CERT is
set. Each TCP connection's framing (octet counting or newlines) is detected from its
first byte (`framing.Framer`). Frames are parsed where they arrive, so the peer address
travels with the log, and enqueued in batches through `intake.submit`.

Backpressure, no loss: while the queue is at its cap (or Redis is away) the batch is
held and retried, and TCP connections are not read, so senders' kernels buffer and then
block them; UDP cannot be slowed, so what arrives then is dropped and counted
(`syslog_udp_dropped`). SIGTERM stops accepting and reading, then enqueues everything
already read before exiting. Ports are opened with SO_REUSEPORT, so several listener
processes can share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import ssl
from datetime import UTC, datetime

import redis

from app.pipeline import counters, intake, logconfig
from app.pipeline.connections import redis_client
from app.receivers.framing import MAX_FRAME_BYTES, Framer
from app.receivers.syslog import frame_item
from config import Settings, load_settings

log = logging.getLogger(__name__)

BATCH = 500  # items per enqueue: one Lua call appends them all
HIGH_WATER = 4 * BATCH  # readers pause above this many items held
FLUSH_INTERVAL = 0.05  # seconds a partial batch waits for company
RETRY_INTERVAL = 0.5  # seconds between tries while the queue is full
SHUTDOWN_GRACE = 30.0  # seconds to enqueue what was read after SIGTERM
STOP_QUIET = 0.3  # after SIGTERM, a connection quiet this long is done


class Batcher:
    """Items read but not yet enqueued, flushed in batches; `room` is set while readers
    may read more (held items under HIGH_WATER and the last enqueue succeeded)."""

    def __init__(self, r: redis.Redis, settings: Settings) -> None:
        self.r, self.settings = r, settings
        self.pending: list = []
        self.room = asyncio.Event()
        self.room.set()
        self.wake = asyncio.Event()
        self.udp_dropped = 0
        self.blocked = False  # the last enqueue was refused

    def add(self, items: list) -> None:
        """Hold items for the next flush; pause readers when too many are held."""
        self.pending.extend(items)
        if len(self.pending) >= BATCH:
            self.wake.set()
        if len(self.pending) >= HIGH_WATER:
            self.room.clear()

    def flush(self) -> bool:
        """Enqueue held items, a batch at a time; False when the queue refused one."""
        size = BATCH
        while self.pending:
            chunk = self.pending[:size]
            try:
                intake.submit(self.r, self.settings, chunk)
            except intake.QueueFull as exc:
                # All or none: a batch larger than the room left is refused whole, so
                # fill the room with a smaller one rather than wait for a whole batch.
                size = min(size, exc.room)
                if size > 0:
                    continue
                return self._blocked(exc)
            except redis.RedisError as exc:
                return self._blocked(exc)
            del self.pending[: len(chunk)]
            size = BATCH
        if self.blocked:
            log.info("queue has room again; reading resumes")
        self.blocked = False
        self.room.set()
        return True

    def _blocked(self, reason: Exception) -> bool:
        if not self.blocked:
            log.warning("holding %s syslog frames: %s", len(self.pending), reason)
        self.blocked = True
        self.room.clear()
        return False

    def count_drops(self) -> None:
        """Add UDP drops to the shared counters (batched: drops come in floods)."""
        if self.udp_dropped:
            counters.add(self.r, self.settings, syslog_udp_dropped=self.udp_dropped)
            self.udp_dropped = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every FLUSH_INTERVAL (or when a batch is full) until `stop`."""
        while not stop.is_set():
            timeout = RETRY_INTERVAL if self.blocked else FLUSH_INTERVAL
            with contextlib.suppress(TimeoutError):  # a tick: flush what there is
                await asyncio.wait_for(self.wake.wait(), timeout)
            self.wake.clear()
            self.flush()
            self.count_drops()


async def read_connection(
    batcher: Batcher, reader: asyncio.StreamReader, peer, transport: str, stop: asyncio.Event
) -> None:
    """Frame one TCP/TLS connection's bytes into held items until EOF; after `stop`,
    until the sender has been quiet for STOP_QUIET seconds (what it sent is taken)."""
    framer = Framer(MAX_FRAME_BYTES)
    while True:
        await batcher.room.wait()  # not reading is what slows a TCP sender
        try:
            data = await asyncio.wait_for(
                reader.read(65_536), STOP_QUIET if stop.is_set() else None
            )
        except TimeoutError:
            return
        if not data:
            batcher.add([frame_item(f, peer, transport, _now()) for f in framer.finish()])
            return
        batcher.add([frame_item(f, peer, transport, _now()) for f in framer.feed(data)])


class Datagrams(asyncio.DatagramProtocol):
    """UDP: one datagram is one frame (RFC 5426)."""

    def __init__(self, batcher: Batcher, allowed) -> None:
        self.batcher, self.allowed = batcher, allowed

    def datagram_received(self, data: bytes, addr) -> None:
        """Hold the datagram's frame, or drop and count it while the queue is full."""
        if not self.allowed(addr[0]):
            self.batcher.udp_dropped += 1
            return
        if not self.batcher.room.is_set():
            self.batcher.udp_dropped += 1
            return
        frame = data.rstrip(b"\r\n\x00")
        if frame:
            self.batcher.add([frame_item(frame, addr[:2], "udp", _now())])


def _now() -> datetime:
    return datetime.now(UTC)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server TLS context when SYSLOG_TLS_CERT is set (key in SYSLOG_TLS_KEY or the
    certificate file)."""
    if not settings.syslog_tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.syslog_tls_cert, settings.syslog_tls_key or None)
    return context


class Listener:
    """The listening sockets and their connections, for one process."""

    def __init__(self, settings: Settings, host: str | None = None) -> None:
        self.settings, self.host = settings, host or settings.bind_host
        self.networks = settings.syslog_networks
        self.batcher = Batcher(redis_client(settings.redis_url), settings)
        self.stop = asyncio.Event()
        self.servers: list[asyncio.Server] = []
        self.udp: asyncio.DatagramTransport | None = None
        self.connections: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Open TCP and UDP on SYSLOG_PORT, and TLS on SYSLOG_TLS_PORT if configured."""
        loop = asyncio.get_running_loop()
        port = self.settings.syslog_port
        self.servers.append(await self._tcp(port, None, "tcp"))
        self.udp, _ = await loop.create_datagram_endpoint(
            lambda: Datagrams(self.batcher, self.allowed),
            local_addr=(self.host, port),
            reuse_port=True,
        )
        context = tls_context(self.settings)
        if context is not None:
            self.servers.append(await self._tcp(self.settings.syslog_tls_port, context, "tls"))
        log.info("syslog listening on %s: tcp+udp %s%s", self.host, port, self._tls_note())

    def allowed(self, host: str) -> bool:
        """Is this peer in SYSLOG_ALLOW (syslog has no key, so the network is the check)?"""
        address = ipaddress.ip_address(host.split("%", 1)[0])
        return any(address in network for network in self.networks)

    def _tls_note(self) -> str:
        return f", tls {self.settings.syslog_tls_port}" if self.settings.syslog_tls_cert else ""

    async def _tcp(self, port: int, context, transport: str) -> asyncio.Server:
        async def handle(reader, writer):
            task = asyncio.current_task()
            self.connections.add(task)
            try:
                peer = writer.get_extra_info("peername")
                if not self.allowed(peer[0]):
                    log.warning("syslog connection from %s refused: not in SYSLOG_ALLOW", peer[0])
                    return
                await read_connection(self.batcher, reader, peer[:2], transport, self.stop)
            except (ConnectionError, ssl.SSLError) as exc:
                log.info("syslog connection %s ended: %s", transport, exc)
            finally:
                self.connections.discard(task)
                writer.close()

        return await asyncio.start_server(
            handle, self.host, port, ssl=context, reuse_port=True, limit=MAX_FRAME_BYTES
        )

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT; then stop accepting, take what connections still
        send, and enqueue everything read."""
        readers_done = asyncio.Event()
        flusher = asyncio.create_task(self.batcher.run(readers_done))
        await self.stop.wait()
        for server in self.servers:
            server.close()
        if self.udp is not None:
            self.udp.close()
        readers = list(self.connections)
        if readers:  # the flusher keeps running, so readers held by a full queue go on
            _, late = await asyncio.wait(readers, timeout=SHUTDOWN_GRACE)
            for task in late:  # still blocked: what they read is held and enqueued below
                task.cancel()
        readers_done.set()
        await flusher
        await self.drain_held()

    async def drain_held(self) -> None:
        """Enqueue everything read, retrying for up to SHUTDOWN_GRACE seconds."""
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE
        while not self.batcher.flush():
            if asyncio.get_running_loop().time() > deadline:
                log.error("exiting with %s syslog frames not enqueued", len(self.batcher.pending))
                return
            await asyncio.sleep(RETRY_INTERVAL)
        self.batcher.count_drops()


async def main(settings: Settings) -> None:
    """Start the listener and serve until a stop signal."""
    listener = Listener(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, listener.stop.set)
    await listener.start()
    await listener.serve()
    log.info("syslog listener stopped")


if __name__ == "__main__":
    settings = load_settings()
    logconfig.setup(settings)
    asyncio.run(main(settings))
