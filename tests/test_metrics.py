"""Latency in `/metrics`: histograms shared through Redis, and the queue's lag age."""

from __future__ import annotations

import time

import redis
from prometheus_client.parser import text_string_to_metric_families

from app.pipeline import histograms, stream
from tasks.drain import drain_stream
from tests.helpers import wait_for


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_accept_to_commit_counts_every_stored_log(client, r, settings):
    stream.ensure_group(r, settings)
    n = 250
    client.post("/data/fast", json=[{"message": f"m{i}"} for i in range(n)])
    time.sleep(0.05)
    assert scrape(client)[("sluice_queue_lag_age_seconds", ())] >= 0.05
    assert drain_stream(settings, "c1", budget=0.5).stored == n
    samples = scrape(client)
    assert samples[("sluice_accept_to_commit_seconds_count", ())] == n
    assert samples[("sluice_accept_to_commit_seconds_sum", ())] > 0
    inf = ("sluice_accept_to_commit_seconds_bucket", (("le", "+Inf"),))
    assert samples[inf] == n
    assert samples[("sluice_drain_chunk_seconds_count", ())] == 3  # BATCH_SIZE 100
    assert samples[("sluice_request_seconds_count", (("family", "ingest"),))] == 1
    assert samples[("sluice_queue_lag_age_seconds", ())] == 0


def test_live_fanout_delay_is_observed_per_frame_sent(client, connect, r, settings):
    watcher = connect()
    stream.ensure_group(r, settings)
    client.post("/data/fast", json=[{"message": "a"}, {"message": "b"}])
    drain_stream(settings, "c1", budget=0.3)
    wait_for(lambda: len(watcher.logs()) == 2)
    key = ("sluice_live_fanout_seconds_count", ())
    value = wait_for(lambda: scrape(client).get(key))
    assert value == 1  # one frame, two logs


def test_buckets_are_cumulative_and_end_in_inf(r, settings):
    histograms.record(r, settings, "drain_chunk_seconds", [0.001, 0.3, 0.3, 100.0])
    buckets, total = histograms.snapshot(r, settings)["drain_chunk_seconds"][""]
    got = dict(buckets)
    assert (got["0.005"], got["0.25"], got["0.5"], got["60.0"], got["+Inf"]) == (1, 1, 3, 3, 4)
    assert abs(total - 100.601) < 1e-9


def test_a_measurement_never_fails_the_work(settings):
    down = settings.with_overrides(redis_url="redis://127.0.0.1:1/0")
    histograms.record(redis.Redis.from_url(down.redis_url), down, "drain_chunk_seconds", [1.0])
