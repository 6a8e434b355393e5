"""`WS /ws/logs`: stored logs, live, filtered server-side, resumable without gap or duplicate.

Server -> client messages (JSON text frames):
    {"type": "logs", "logs": [{"id": 17, "stream_id": "...", "level": "INFO", ...}, ...]}
    {"type": "dropped", "count": 12}        this client was too slow; 12 logs skipped
    {"type": "filters", "filters": {...}}   the filters now in force
    {"type": "ping"}                        heartbeat when idle (WS_PING_INTERVAL)
    {"type": "error", "error": "...", "fields": {...}}
    {"type": "stalled"}                     the live subscription is down; logs will follow
    {"type": "resync"}                      it is back; what was missed follows from the database
Client -> server: {"type": "filter", "level": [...], "min_level": "WARN", "source": ...,
"application": ..., "q": ..., "contains": ..., "meta.key": ...} replaces the filters: the
query API's filters without the time window (`app.pipeline.filters`).

Resume: connect with `?after=<id>`. The client is subscribed first, then everything
stored with a larger id is read from PostgreSQL in id order, then the live stream
continues, skipping ids already sent. Ids are allocated, committed and published in one
order (the commit-order lock in `app.pipeline.store`), so this has no gap and no duplicate.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time

import orjson
from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import ValidationError
from simple_websocket import ConnectionClosed
from sqlalchemy import func, select

from app.extensions import sock
from app.pipeline import counters, histograms, jsoncodec
from app.pipeline.connections import engine, redis_client
from app.pipeline.fanout import RESYNC, Batch, Hub, Subscriber
from app.pipeline.filters import Filters, LiveFilterSchema
from app.pipeline.record import logs, to_json
from app.web.openapi import errors

log = logging.getLogger(__name__)

bp = Blueprint("live", __name__, description="Watch logs live (WebSocket).")


CATCH_UP_PAGE = 500
_filters = LiveFilterSchema()


class ConnectionCount:
    """This process's open WebSocket count, mirrored in Redis so /health can sum all
    web processes (each key expires if its process dies)."""

    TTL = 60

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis_url = redis_url
        self.key = f"{prefix}:ws:{socket.gethostname()}-{os.getpid()}"
        self.pattern = f"{prefix}:ws:*"
        self.local = 0
        self._lock = threading.Lock()
        self._published = 0.0

    def change(self, delta: int) -> None:
        """Count a connect (+1) or disconnect (-1) and publish the new count."""
        # Publish under the lock: two changes racing to Redis could land out of order and
        # leave a stale count behind (seen with two clients closing at once under gevent).
        with self._lock:
            self.local += delta
            self._publish()

    def refresh(self) -> None:
        """Keep this process's key alive while it has connections (at most every TTL/3)."""
        if self.local and time.monotonic() - self._published > self.TTL / 3:
            with self._lock:
                self._publish()

    def _publish(self) -> None:
        r = redis_client(self.redis_url)
        if self.local:
            r.set(self.key, self.local, ex=self.TTL)
        else:
            r.delete(self.key)
        self._published = time.monotonic()

    def total(self) -> int:
        """Open WebSocket connections over every web process."""
        r = redis_client(self.redis_url)
        keys = list(r.scan_iter(match=self.pattern, count=500))
        return sum(int(v) for v in r.mget(keys) if v) if keys else 0


def live_state(app) -> tuple[Hub, ConnectionCount]:
    """This process's hub and connection count (created with the app, started lazily)."""
    settings = app.extensions["sluice"]
    if "live" not in app.extensions:
        app.extensions["live"] = (
            Hub(settings),
            ConnectionCount(settings.redis_url, settings.key_prefix),
        )
    return app.extensions["live"]


def _send(ws, message: dict) -> None:
    ws.send(jsoncodec.dumps(message).decode())


def catch_up(ws, settings, flt: Filters, after: int) -> int:
    """Send every stored log with id > after that passes `flt`; return the last id sent."""
    last = after
    eng = engine(settings.database_read_url)
    while True:
        query = (
            select(logs)
            .where(logs.c.id > last, flt.where())
            .order_by(logs.c.id)
            .limit(CATCH_UP_PAGE)
        )
        with eng.connect() as conn:
            rows = [to_json(row) for row in conn.execute(query).mappings()]
        if rows:
            _send(ws, {"type": "logs", "logs": rows})
            last = rows[-1]["id"]
        if len(rows) < CATCH_UP_PAGE:
            return last


def _read_client(ws, sub: Subscriber, changed: queue.Queue) -> None:
    """Apply filter changes sent by the client until it goes away."""
    while True:
        try:
            raw = ws.receive()
        except ConnectionClosed:
            return
        try:
            message = orjson.loads(raw)
            if not isinstance(message, dict) or message.get("type") != "filter":
                raise ValidationError('Send {"type": "filter", ...}.', field_name="type")
            flt = _filters.load(LiveFilterSchema.from_message(message))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            fields = getattr(exc, "messages", {"_schema": [str(exc)]})
            changed.put({"type": "error", "error": "invalid_filter", "fields": fields})
            continue
        sub.filter = flt
        changed.put({"type": "filters", "filters": flt.as_dict()})


@sock.route("/ws/logs", bp=bp)
@bp.doc(
    summary="Stored logs, live, filtered (the protocol is in this description's text).",
    parameters=[
        {"in": "query", "schema": LiveFilterSchema},
        {"in": "query", "name": "after", "schema": {"type": "integer", "minimum": 0}},
    ],
    responses={"101": {"description": "Switching to the WebSocket protocol."}},
)
@errors(bp, 400)  # werkzeug's answer to a plain GET of a WebSocket route
def logs_socket(ws):
    """Stream stored logs to one client (see the module docstring for the protocol)."""
    app = current_app._get_current_object()
    settings = app.extensions["sluice"]
    try:
        args = {k: v for k, v in request.args.lists() if k != "after"}
        flt = _filters.load(args)
        after = request.args.get("after", type=int)
    except ValidationError as exc:
        _send(ws, {"type": "error", "error": "invalid_filter", "fields": exc.messages})
        return
    hub, count = live_state(app)
    sub = Subscriber(flt, settings.ws_buffer)
    count.change(+1)
    try:
        # Registered inside the try: a handshake that fails half-way leaves nothing behind.
        hub.add(sub)
        notices: queue.Queue = queue.Queue()
        threading.Thread(target=_read_client, args=(ws, sub, notices), daemon=True).start()
        # Read where "now" is before confirming: a log committed after the client hears
        # `filters` must have a larger id, or the pump would skip it as already sent.
        last = latest_id(settings) if after is None else None
        _send(ws, {"type": "filters", "filters": flt.as_dict()})
        if after is not None:
            last = catch_up(ws, settings, flt, after)
        _pump(ws, settings, hub, sub, notices, last, count)
    except ConnectionClosed:
        pass
    finally:
        hub.remove(sub)
        count.change(-1)


def latest_id(settings) -> int:
    """The largest stored id: where a client that asked for no history starts."""
    with engine(settings.database_read_url).connect() as conn:
        return conn.execute(select(func.coalesce(func.max(logs.c.id), 0))).scalar_one()


def _pump(ws, settings, hub: Hub, sub: Subscriber, notices: queue.Queue, last: int, count) -> None:
    """Forward the client's buffer to it until the connection closes."""
    idle_since = time.monotonic()
    while ws.connected:
        count.refresh()
        while not notices.empty():
            _send(ws, notices.get_nowait())
        try:
            item = sub.buffer.get(timeout=min(settings.ws_ping_interval, 1.0))
        except queue.Empty:
            item = None
        if sub.dropped:
            dropped, sub.dropped = sub.dropped, 0
            _send(ws, {"type": "dropped", "count": dropped})
            counters.add(redis_client(settings.redis_url), settings, live_dropped=dropped)
        if item is RESYNC:
            _send(ws, {"type": "resync"})
            last = catch_up(ws, settings, sub.filter, last)
            continue
        if isinstance(item, Batch) and item.logs[-1]["id"] > last:
            if item.logs[0]["id"] > last:  # the usual case: the frame encoded once for all
                ws.send(item.frame)
            else:
                _send(ws, {"type": "logs", "logs": [e for e in item.logs if e["id"] > last]})
            last = item.logs[-1]["id"]
            idle_since = time.monotonic()
            if isinstance(item.published, float):
                sent = time.time() - item.published
                r = redis_client(settings.redis_url)
                histograms.process_buffer.add(r, settings, "live_fanout_seconds", sent)
        elif time.monotonic() - idle_since >= settings.ws_ping_interval:
            _send(ws, {"type": "ping" if hub.ready else "stalled"})
            idle_since = time.monotonic()
