"""GET /system/status and GET /system: the numbers the system page shows, from the real
queue, drain, counters and partitions."""

from __future__ import annotations

import itertools
import time

import orjson

from app.pipeline import counters, stream
from tasks.drain import drain_stream


def fast(client, logs):
    answer = client.post("/data/fast", data=orjson.dumps(logs), content_type="application/json")
    assert answer.status_code == 202, answer.json


def test_lag_then_drain_rate_dead_letters_and_partitions(client, r, settings):
    stream.ensure_group(r, settings)
    fast(client, [{"message": f"m{i}"} for i in range(30)])
    before = client.get("/system/status").json
    assert before["queue"]["lag"] == 30 and before["queue"]["length"] == 30
    assert before["queue"]["lag_age_seconds"] >= 0
    assert sum(n for _, n in before["rates"]["ingest_accepted"]) == 30
    assert sum(n for _, n in before["rates"]["drain_stored"]) == 0

    r.xadd(settings.stream_name, {"d": b"{broken"})
    drain_stream(settings, "c1", budget=0.3)
    after = client.get("/system/status").json
    assert after["queue"]["lag"] == 0 and after["queue"]["lag_age_seconds"] == 0
    rates = after["rates"]
    assert len(rates["drain_stored"]) == 60 and rates["step_seconds"] == 10
    assert sum(n for _, n in rates["drain_stored"]) == 30
    assert sum(n for _, n in rates["drain_dead_letters"]) == 1
    assert rates["last_stored_at"] is not None
    (newest,) = after["dead_letters"]["newest"]
    assert "bad JSON" in newest["reason"] and after["dead_letters"]["total"] == 1
    assert [c["name"] for c in after["consumers"]] == ["c1"]
    names = [p["name"] for p in after["partitions"]]
    assert names == sorted(names, reverse=True) and any(n.startswith("logs_p") for n in names)
    assert after["database_bytes"] == sum(p["bytes"] for p in after["partitions"]) > 0
    # No Celery app in a test app: said so, never a hang or an error.
    assert after["workers"] == {
        "available": False,
        "error": "no Celery app in this process",
        "nodes": [],
    }


def test_series_buckets_are_ten_seconds_and_oldest_first(r, settings):
    now = time.time()
    pipe = r.pipeline()
    counters.sample(pipe, settings, now - 25, drain_stored=4)
    counters.sample(pipe, settings, now, drain_stored=2, ingest_accepted=7)
    counters.sample(pipe, settings, now, drain_stored=1, live_dropped=9)
    pipe.execute()
    points = counters.series(r, settings, "drain_stored", now, 4)
    starts = [t for t, _ in points]
    assert starts == sorted(starts) and {b - a for a, b in itertools.pairwise(starts)} == {10}
    assert points[-1][1] == 3 and sum(n for _, n in points) == 7
    assert counters.series(r, settings, "ingest_accepted", now, 1) == [[starts[-1], 7]]
    assert r.ttl(counters.series_key(settings, "drain_stored", starts[-1])) > 3000


def test_the_page_and_its_header(client):
    page = client.get("/system", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert 'src="/static/js/system.js"' in html and 'aria-current="page"' in html
    index = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert '<a href="/system" id="system-link">System</a>' in index
    assert "/queue/status" not in index
