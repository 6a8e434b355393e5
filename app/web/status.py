"""`GET /health` and `GET /queue/status`: is Sluice well, and how far behind is it."""

from __future__ import annotations

import redis
from flask import current_app, jsonify
from flask_smorest import Blueprint
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import __version__
from app.pipeline import stream
from app.pipeline.connections import engine, redis_client
from app.web.live import live_state
from app.web.openapi import Health, QueueStatus, errors

bp = Blueprint("status", __name__, description="Is Sluice well.")


def _check_redis(settings) -> str:
    try:
        redis_client(settings.redis_url).ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return f"down: {exc}"
    return "ok"


def _check_database(settings) -> str:
    try:
        with engine(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        return f"down: {str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
    return "ok"


@bp.get("/health")
@bp.response(200, Health, description="PostgreSQL and Redis answer.")
@bp.alt_response(503, schema=Health, description="A dependency is down (same body).")
def health():
    """200 when Redis and PostgreSQL answer, 503 (with the same body) when either is down."""
    settings = current_app.extensions["sluice"]
    checks = {"redis": _check_redis(settings), "database": _check_database(settings)}
    _, count = live_state(current_app)
    connections = count.total() if checks["redis"] == "ok" else count.local
    healthy = all(v == "ok" for v in checks.values())
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "api": "ok",
        **checks,
        "websocket_connections": connections,
        "version": __version__,
    }
    return jsonify(body), 200 if healthy else 503


@bp.get("/queue/status")
@bp.response(200, QueueStatus, description="Queue length, lag, pending, dead letters.")
@errors(bp, 503)
def queue_status():
    """Stream length, pending (delivered, not acked), lag (not delivered), dead letters."""
    settings = current_app.extensions["sluice"]
    return jsonify(stream.status(redis_client(settings.redis_url), settings))
