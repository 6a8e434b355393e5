"""Request durations per endpoint family (the blueprint), for `/metrics`."""

from __future__ import annotations

import time

from flask import Flask, current_app, g, request

from app.pipeline import histograms
from app.pipeline.connections import redis_client


def init_app(app: Flask) -> None:
    """Time every request except WebSocket sessions (their length is the client's)."""
    app.before_request(_start)
    app.teardown_request(_finish)


def _start() -> None:
    g.sluice_started = time.perf_counter()


def _finish(_exc=None) -> None:
    started = g.pop("sluice_started", None)
    if started is None or request.headers.get("Upgrade", "").lower() == "websocket":
        return
    settings = current_app.extensions["sluice"]
    family = request.blueprint or "none"
    r = redis_client(settings.redis_url)
    histograms.process_buffer.add(
        r, settings, "request_seconds", time.perf_counter() - started, family
    )
