"""The live hub cannot die quietly: each failure is provoked against real Redis and a real
WebSocket client."""

from __future__ import annotations

import threading
import time

from werkzeug.serving import make_server

from app import create_app
from app.web.live import live_state
from tests.helpers import post, redis_url_without, wait_for
from tests.test_live import Client


def _ids(client: Client) -> list[int]:
    return [log["id"] for log in client.logs()]


def test_malformed_messages_are_skipped(live_server, connect, r, settings):
    watcher = connect()
    for garbage in (b"not json", b'{"no": "logs"}', b'{"logs": "text"}', b'{"logs": [1, 2]}'):
        r.publish(settings.pubsub_channel, garbage)
    ids = post(f"http://{live_server}", [{"message": "still flowing"}])
    wait_for(lambda: _ids(watcher) == ids)


def _kill_hub(r, settings) -> None:
    name = f"{settings.key_prefix}:hub"
    found = [c for c in r.client_list() if c.get("name") == name]
    assert found, "the hub's subscription is not connected"
    for c in found:
        r.client_kill_filter(_id=c["id"])


def test_lost_subscription_resyncs_with_a_backoff_that_resets(live_server, connect, r, settings):
    """Killed five times: each time the client is told to resync and catches up, and the
    reconnect stays fast (a backoff that never reset would reach 4 s by the fifth)."""
    server = f"http://{live_server}"
    watcher = connect()
    expected: list[int] = []
    for round_ in range(5):
        before = len(watcher.of_type("resync"))
        _kill_hub(r, settings)
        # Published while the hub may be away: read back from the database on resync.
        expected += post(server, [{"message": f"during outage {round_}"}])
        started = time.monotonic()
        wait_for(lambda b=before: len(watcher.of_type("resync")) > b, timeout=5)
        assert time.monotonic() - started < 2.0
        wait_for(lambda e=list(expected): _ids(watcher) == e)
        time.sleep(0.6)  # up for a while: the next loss starts the backoff over
    assert _ids(watcher) == expected  # every log once, in id order


def test_failed_handshake_leaves_nothing_registered(r, names, settings):
    """The hub cannot subscribe (a user refused SUBSCRIBE): the socket fails, and neither
    a subscriber nor a connection is left counted."""
    user = f"{names}-nosub".replace(":", "-")
    url = redis_url_without(r, settings, user, "subscribe")
    app = create_app(settings.with_overrides(redis_url=url))
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        c = Client(f"ws://127.0.0.1:{srv.server_port}/ws/logs")
        wait_for(lambda: not c.thread.is_alive(), timeout=10)  # closed by the server
        hub, count = live_state(app)
        assert (hub.count, count.local) == (0, 0)
        assert not c.of_type("filters")
    finally:
        srv.shutdown()
        r.acl_deluser(user)
