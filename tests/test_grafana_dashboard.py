"""docs/grafana-dashboard.json asks only for series that /metrics serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson

from tasks.drain import drain_stream

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"


def exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def test_every_series_in_the_dashboard_is_served(client, settings):
    body = orjson.dumps([{"message": "m"}])
    assert client.post("/data/fast", data=body, content_type="application/json").status_code == 202
    drain_stream(settings, "c1", budget=0.3)
    client.get("/logs")  # a request, so a request histogram exists
    text = client.get("/metrics").text
    served = set(re.findall(r"^(sluice_[a-z_]+)", text, re.M))
    # A histogram with no observation yet (no live client here) is declared, not sampled.
    served |= {f"{n}_bucket" for n in re.findall(r"^# TYPE (sluice_\w+) histogram", text, re.M)}
    asked = {name for e in exprs() for name in re.findall(r"\bsluice_[a-z_]+", e)}
    assert len(asked) >= 15
    assert asked <= served, asked - served


def test_quantiles_come_from_histogram_buckets_by_le():
    quantiles = [e for e in exprs() if "histogram_quantile" in e]
    assert len(quantiles) >= 8
    for e in quantiles:
        assert "_bucket{" in e and "by (le" in e, e
