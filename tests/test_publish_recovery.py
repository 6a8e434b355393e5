"""A Redis error between commit and publish in the drain costs a live client nothing:
the rows are counted stored once, published once they can be, and a client that
resumes has no gap and no duplicate.

The fault is real: the drain runs as a Redis ACL user that may do everything but
PUBLISH, so the commit succeeds and the publish is refused by the server.
"""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import text

from app.pipeline import counters, stream
from tasks.drain import PublishFailed, drain_stream
from tests.helpers import count_logs, post, redis_url_without, wait_for
from tests.test_live import Client


@pytest.fixture
def no_publish_url(r, names, settings):
    """A Redis URL whose user is refused PUBLISH (and only that)."""
    user = f"{names}-nopub".replace(":", "-")
    yield redis_url_without(r, settings, user, "publish")
    r.acl_deluser(user)


def _ids(client: Client) -> list[int]:
    return [log["id"] for log in client.logs()]


def test_failed_publish_is_published_later_without_gap(
    live_server, client, r, settings, db, no_publish_url
):
    server = f"http://{live_server}"
    watcher = Client(f"ws://{live_server}/ws/logs")
    wait_for(lambda: watcher.of_type("filters"))
    first = post(server, [{"message": "before"}])
    wait_for(lambda: _ids(watcher) == first)

    stream.ensure_group(r, settings)
    body = orjson.dumps([{"message": f"held {i}"} for i in range(30)])
    assert client.post("/data/fast", data=body, content_type="application/json").status_code == 202
    broken = settings.with_overrides(redis_url=no_publish_url)
    with pytest.raises(PublishFailed):
        drain_stream(broken, "drainer", budget=0.5)
    # Committed, not published, not acked, not counted.
    assert count_logs(db, "message LIKE 'held %'") == 30
    assert stream.status(r, settings)["pending_messages"] == 30
    assert counters.totals(r, settings)["drain_stored"] == 0
    assert counters.totals(r, settings)["live_publish_failed"] == 30
    assert _ids(watcher) == first

    # Redis lets the drain publish again: the same consumer's pending entries come back.
    stats = drain_stream(settings, "drainer", budget=0.5)
    assert (stats.stored, stats.duplicates) == (30, 0)
    assert counters.totals(r, settings)["drain_stored"] == 30
    assert stream.status(r, settings)["pending_messages"] == 0
    wait_for(lambda: len(_ids(watcher)) == 31)
    last = _ids(watcher)[-1]
    watcher.close()

    # Resume from the last id seen while more logs arrive: no gap, no duplicate.
    later = post(server, [{"message": "after"}])
    resumed = Client(f"ws://{live_server}/ws/logs?after={last}")
    wait_for(lambda: _ids(resumed) == later)
    resumed.close()
    db.rollback()
    everything = db.execute(text("SELECT id FROM logs ORDER BY id")).scalars().all()
    assert _ids(watcher) + _ids(resumed) == everything
    assert count_logs(db) == 32
