"""`GET /metrics`: the shared counters and latency histograms (`app.pipeline.counters`,
`app.pipeline.histograms`) and the queue's gauges, read from Redis at scrape time, in
Prometheus' text format."""

from __future__ import annotations

import time

from flask import Response, current_app
from flask_smorest import Blueprint
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from app.pipeline import histograms, stream
from app.pipeline.connections import redis_client
from app.pipeline.counters import COUNTERS, totals
from app.web.openapi import errors
from config import Settings

bp = Blueprint("metrics", __name__, description="Prometheus metrics.")


class _Collector:
    """Reads counters and queue gauges from Redis at scrape time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self):
        r = redis_client(self.settings.redis_url)
        for name, value in totals(r, self.settings).items():
            family = CounterMetricFamily(f"sluice_{name}", COUNTERS[name])
            family.add_metric([], value)
            yield family
        status = stream.status(r, self.settings)
        for name, help_text in (
            ("length", "Entries in the stream (not yet acked or trimmed)"),
            ("lag", "Entries not yet delivered to a worker"),
            ("pending_messages", "Entries delivered to a worker, not yet acked"),
            ("dead_letters", "Entries in the dead-letter stream"),
        ):
            gauge = GaugeMetricFamily(f"sluice_queue_{name}", help_text)
            gauge.add_metric([], status[name] or 0)
            yield gauge
        age = GaugeMetricFamily(
            "sluice_queue_lag_age_seconds", "Age of the oldest entry not yet drained (acked)"
        )
        age.add_metric([], stream.oldest_undrained_age(r, self.settings, time.time()))
        yield age
        yield from self._histograms(r)

    def _histograms(self, r):
        # This process's own buffered samples first, so a scrape sees its latest requests.
        histograms.process_buffer.flush(r)
        for name, per_label in histograms.snapshot(r, self.settings).items():
            help_text, label, _ = histograms.HISTOGRAMS[name]
            labels = [label] if label else None
            family = HistogramMetricFamily(f"sluice_{name}", help_text, labels=labels)
            for value, (buckets, total) in sorted(per_label.items()):
                family.add_metric([value] if label else [], buckets, total)
            yield family


@bp.get("/metrics")
@bp.response(200, content_type="text/plain", description="Prometheus text format.")
@errors(bp, 503)
def metrics():
    """Prometheus text exposition of the shared counters, histograms and queue gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(current_app.extensions["sluice"]))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")
