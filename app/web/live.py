"""`WS /ws/logs`: stored logs, live, filtered server-side, resumable without gap or duplicate.

Server -> client messages (JSON text frames):
    {"type": "logs", "logs": [{"id": 17, "stream_id": "...", "level": "INFO", ...}, ...]}
    {"type": "dropped", "count": 12}        this client was too slow; 12 logs skipped
    {"type": "filters", "filters": {...}}   the filters now in force
    {"type": "ping"}                        heartbeat when idle (WS_PING_INTERVAL)
    {"type": "error", "error": "...", "fields": {...}}
    {"type": "stalled"}                     the live subscription is down; logs will follow
    {"type": "resync"}                      it is back; what was missed follows from the database
    {"type": "catchup_truncated", "sent": 10000, "resume_from": 1042, "live_from": 98113,
     "query": "/logs?...&order=asc&cursor=..."}
                                            the catch-up stopped at WS_CATCHUP_MAX logs
                                            (the last sent: resume_from); live logs follow
                                            from live_from + 1; `query` pages the rest
Client -> server: {"type": "filter", "level": [...], "min_level": "WARN", "source": ...,
"application": ..., "q": ..., "contains": ..., "meta.key": ...} replaces the filters: the
query API's filters without the time window (`app.pipeline.filters`).

Resume: connect with `?after=<id>`. The client is subscribed first, then everything
stored with a larger id is read from PostgreSQL in id order, then the live stream
continues, skipping ids already sent. Ids are allocated, committed and published in one
order (`app.pipeline.store.write_in_commit_order` keeps it across parallel writers),
so this has no gap and no duplicate.

Limits: a catch-up sends at most WS_CATCHUP_MAX logs (then `catchup_truncated`); a client
message over WS_MAX_MESSAGE bytes closes the connection with 1009; a frame the client
does not take within WS_SEND_TIMEOUT closes it (no close frame: it is not reading); a
web process past WS_MAX_CONNECTIONS answers the upgrade request with a 503 in the JSON
error shape and a Retry-After. The send path itself is `app.web.live_client`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime
from urllib.parse import urlencode

import orjson
from flask import current_app, g, request
from flask_smorest import Blueprint
from marshmallow import ValidationError
from simple_websocket import ConnectionClosed
from sqlalchemy import func, select

from app.extensions import sock
from app.pipeline import jsoncodec
from app.pipeline.connections import engine, redis_client
from app.pipeline.fanout import RESYNC, Hub
from app.pipeline.filters import Filters, LiveFilterSchema
from app.pipeline.record import logs, to_json
from app.web.errors import APIError
from app.web.live_client import LiveClient, SendTimeout, text_frame
from app.web.openapi import Error, errors
from app.web.query_schemas import Position, encode_cursor

log = logging.getLogger(__name__)

bp = Blueprint("live", __name__, description="Watch logs live (WebSocket).")


CATCH_UP_PAGE = 500
RETRY_AFTER_S = 5  # a refused connection's Retry-After: clients reconnect with a backoff
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

    def acquire(self, cap: int) -> bool:
        """Count a connect unless `cap` connections are open already (then False)."""
        with self._lock:
            if self.local >= cap:
                return False
            self.local += 1
            self._publish()
            return True

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
            Hub(settings, encode=text_frame),
            ConnectionCount(settings.redis_url, settings.key_prefix),
        )
    return app.extensions["live"]


def catch_up(client: LiveClient, settings, flt: Filters, after: int) -> int:
    """Send the stored logs with id > after that pass `flt`, in id order, at most
    WS_CATCHUP_MAX of them; return the id the live stream continues after. Past the cap
    the client is sent `catchup_truncated` (where to page the rest from `/logs`) and the
    live stream continues after the newest stored log."""
    last, last_log, sent = after, None, 0
    eng = engine(settings.database_read_url)
    while True:
        # One row past the cap tells whether more are stored than may be sent.
        size = min(CATCH_UP_PAGE, settings.ws_catchup_max - sent + 1)
        query = select(logs).where(logs.c.id > last, flt.where()).order_by(logs.c.id).limit(size)
        with eng.connect() as conn:
            rows = [to_json(row) for row in conn.execute(query).mappings()]
        more = sent + len(rows) > settings.ws_catchup_max
        rows = rows[: settings.ws_catchup_max - sent]
        if rows:
            client.send_logs(rows)
            last, last_log, sent = rows[-1]["id"], rows[-1], sent + len(rows)
        if more:
            return _truncated(client, settings, flt, last_log, sent)
        if len(rows) < size:
            return last


def _truncated(client: LiveClient, settings, flt: Filters, last_log: dict, sent: int) -> int:
    """Tell the client the catch-up stopped at the cap, and where the rest is."""
    live_from = max(latest_id(settings), last_log["id"])
    stamp = datetime.fromisoformat(last_log["timestamp"])
    cursor = encode_cursor(Position(stamp, last_log["id"], "asc"))
    params = [*query_params(flt), ("order", "asc"), ("cursor", cursor)]
    client.send(
        {
            "type": "catchup_truncated",
            "sent": sent,
            "resume_from": last_log["id"],
            "live_from": live_from,
            "query": f"/logs?{urlencode(params)}",
        }
    )
    return live_from


def query_params(flt: Filters) -> list[tuple[str, str]]:
    """The live filters as `/logs` query parameters."""
    params: list[tuple[str, str]] = []
    if flt.levels is not None:
        params.append(("level", ",".join(flt.levels)))
    params += [("source", v) for v in flt.sources]
    params += [("application", v) for v in flt.applications]
    params += [(name, v) for name, v in (("q", flt.q), ("contains", flt.contains)) if v]
    for path, values in flt.meta:
        value = values[0]
        text = value if isinstance(value, str) else jsoncodec.dumps(value).decode()
        params.append(("meta." + ".".join(path), text))
    return params


def _read_client(ws, hub: Hub, client: LiveClient) -> None:
    """Apply filter changes sent by the client until it goes away."""
    while True:
        try:
            raw = ws.receive()
        except ConnectionClosed:
            client.wake.set()  # the pump notices at once, not at its next timeout
            return
        try:
            message = orjson.loads(raw)
            if not isinstance(message, dict) or message.get("type") != "filter":
                raise ValidationError('Send {"type": "filter", ...}.', field_name="type")
            flt = _filters.load(LiveFilterSchema.from_message(message))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            fields = getattr(exc, "messages", {"_schema": [str(exc)]})
            client.notify({"type": "error", "error": "invalid_filter", "fields": fields})
            continue
        hub.refilter(client, flt)
        client.notify({"type": "filters", "filters": flt.as_dict()})


@bp.before_request
def _take_a_slot():
    """Refuse a connection past WS_MAX_CONNECTIONS before the upgrade (see README)."""
    settings = current_app.extensions["sluice"]
    _, count = live_state(current_app)
    if not count.acquire(settings.ws_max_connections):
        raise APIError(
            503,
            "too_many_connections",
            f"This web process serves its {settings.ws_max_connections} live connections "
            "(WS_MAX_CONNECTIONS); retry later.",
            retry_after=RETRY_AFTER_S,
        )
    g.live_slot = count


@bp.teardown_request
def _give_back_the_slot(exc=None):
    count = g.pop("live_slot", None)
    if count is not None:
        count.change(-1)


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
@bp.alt_response(
    503,
    schema=Error,
    description="This web process has WS_MAX_CONNECTIONS sockets open; retry after `Retry-After`.",
)
def logs_socket(ws):
    """Stream stored logs to one client (see the module docstring for the protocol)."""
    app = current_app._get_current_object()
    settings = app.extensions["sluice"]
    try:
        args = {k: v for k, v in request.args.lists() if k != "after"}
        flt = _filters.load(args)
        after = request.args.get("after", type=int)
    except ValidationError as exc:
        ws.send(
            jsoncodec.dumps(
                {"type": "error", "error": "invalid_filter", "fields": exc.messages}
            ).decode()
        )
        return
    hub, count = live_state(app)
    client = LiveClient(ws, flt, settings)
    try:
        # Registered inside the try: a handshake that fails half-way leaves nothing behind.
        hub.add(client)
        threading.Thread(target=_read_client, args=(ws, hub, client), daemon=True).start()
        # Read where "now" is before confirming: a log committed after the client hears
        # `filters` must have a larger id, or it would be skipped as already sent.
        last = latest_id(settings) if after is None else None
        client.send({"type": "filters", "filters": flt.as_dict()})
        if after is not None:
            last = catch_up(client, settings, flt, after)
        client.go_live(last)
        _pump(client, settings, hub, count)
    except SendTimeout:
        log.info("closed a live client that took nothing for %ss", settings.ws_send_timeout)
        client.abort()
    except (ConnectionClosed, ConnectionError):  # the client went away
        pass
    finally:
        hub.remove(client)


def latest_id(settings) -> int:
    """The largest stored id: where a client that asked for no history starts."""
    with engine(settings.database_read_url).connect() as conn:
        return conn.execute(select(func.coalesce(func.max(logs.c.id), 0))).scalar_one()


def _pump(client: LiveClient, settings, hub: Hub, count) -> None:
    """Send what the hub could not write at once, catch up after a resync, and ping
    when idle, until the connection closes."""
    idle_since = time.monotonic()
    while client.connected:
        count.refresh()
        # Woken by the hub, the reader or a close; else at the next ping or count refresh.
        client.wake.wait(timeout=min(settings.ws_ping_interval, count.TTL / 3))
        done = client.flush()
        if done is RESYNC:
            client.send({"type": "resync"})
            client.go_live(catch_up(client, settings, client.filter, client.last))
            done = True
        if done:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= settings.ws_ping_interval:
            client.send({"type": "ping" if hub.ready else "stalled"})
            idle_since = time.monotonic()
