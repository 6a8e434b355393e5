"""`GET /health` and `GET /queue/status`: is Sluice well, and how far behind is it."""

from __future__ import annotations

import time

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
    except redis.RedisError:
        return "down"
    return "ok"


def _check_database(settings) -> str:
    try:
        with engine(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError:
        return "down"
    return "ok"


def persistence(r: redis.Redis) -> dict[str, str]:
    """Whether Redis keeps the queue on disk: AOF (INFO persistence) and RDB snapshots
    (CONFIG GET save: "unknown" where a managed Redis refuses CONFIG)."""
    aof = "on" if r.info("persistence").get("aof_enabled") else "off"
    try:
        found = r.config_get("save")
        rdb = "on" if found.get("save", found.get(b"save")) else "off"
    except redis.ResponseError:
        rdb = "unknown"
    return {"aof": aof, "rdb": rdb}


def _queue(settings) -> dict:
    r = redis_client(settings.redis_url)
    try:
        found = persistence(r)
        age = stream.oldest_undrained_age(r, settings, time.time())
        dead = r.xlen(settings.dead_letter_stream)
    except redis.RedisError:
        return {}
    return {
        "persistence": found,
        "oldest_undrained_seconds": round(age, 3),
        "dead_letters": dead,
    }


@bp.get("/health")
@bp.response(
    200,
    Health,
    description="PostgreSQL and Redis answer (status `healthy`, or "
    "`degraded` when Redis keeps nothing on disk).",
)
@bp.alt_response(503, schema=Health, description="A dependency is down (same body).")
def health():
    """200 when Redis and PostgreSQL answer (`degraded` when Redis has neither AOF nor RDB
    snapshots, so a Redis restart loses every log not yet drained), 503 with the same
    body when either is down. It names no error, host or user: it is open to anyone."""
    settings = current_app.extensions["sluice"]
    checks = {"redis": _check_redis(settings), "database": _check_database(settings)}
    queue = _queue(settings) if checks["redis"] == "ok" else {}
    _, count = live_state(current_app)
    connections = count.total() if checks["redis"] == "ok" else count.local
    healthy = all(v == "ok" for v in checks.values())
    volatile = queue.get("persistence") == {"aof": "off", "rdb": "off"}
    body = {
        "status": "unhealthy" if not healthy else "degraded" if volatile else "healthy",
        "api": "ok",
        **checks,
        **queue,
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
