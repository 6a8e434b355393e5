"""`GET /system` (the operations page) and `GET /system/status` (the JSON it polls):
queue and lag, rates, workers, dead letters, partition sizes, a link to Flower.

Everything but the workers comes from Redis and PostgreSQL (`app.pipeline.overview`).
The workers are asked through Celery's broker (`inspect().stats()`), bounded by
INSPECT_TIMEOUT so a page never waits on a worker that does not answer; each stream
consumer (`<host>-<pid>`, the drain's reader) is matched to the worker whose pool holds
that pid.
"""

from __future__ import annotations

import logging
import time

import redis
from flask import current_app, jsonify
from flask_smorest import Blueprint
from kombu.exceptions import KombuError
from marshmallow import fields

from app.pipeline import overview
from app.pipeline.connections import engine, redis_client
from app.web.openapi import Open, errors
from app.web.ui import flower_url, page_host, render_page

log = logging.getLogger(__name__)

bp = Blueprint("system", __name__, description="The system at a glance.")

INSPECT_TIMEOUT = 1.0  # seconds a status request waits for the workers' answers
INSPECT_EVERY = 5.0  # seconds an answer is reused for


class SystemStatus(Open):
    """Queue, rates, workers, dead letters, partitions."""

    time = fields.Float(required=True)
    queue = fields.Dict(required=True)
    rates = fields.Dict(required=True)
    consumers = fields.List(fields.Dict(), required=True)
    workers = fields.Dict(required=True)
    dead_letters = fields.Dict(required=True)
    partitions = fields.List(fields.Dict(), required=True)
    database_bytes = fields.Integer(required=True)
    flower_url = fields.String(allow_none=True, required=True)


def _worker_stats(celery) -> dict:
    # Every open page polls; one broadcast per INSPECT_EVERY per web process is enough.
    cache = current_app.extensions.setdefault("sluice_worker_stats", {"at": 0.0})
    if time.monotonic() - cache["at"] > INSPECT_EVERY:
        cache["stats"] = celery.control.inspect(timeout=INSPECT_TIMEOUT).stats() or {}
        cache["at"] = time.monotonic()
    return cache["stats"]


def workers(consumers: list[dict]) -> dict:
    """Celery's workers with their pool's pids, and which stream consumer each pid is;
    `available` False (with the reason) when they could not be asked in time."""
    celery = current_app.extensions.get("celery")
    if celery is None:
        return {"available": False, "error": "no Celery app in this process", "nodes": []}
    try:
        stats = _worker_stats(celery)
    except (KombuError, OSError, redis.RedisError) as exc:  # the broker is away: say so
        log.warning("could not inspect the workers: %s", exc)
        return {"available": False, "error": str(exc), "nodes": []}
    by_pid = {c["name"].rsplit("-", 1)[-1]: c for c in consumers}
    nodes = []
    for name, info in sorted(stats.items()):
        pids = [str(p) for p in info.get("pool", {}).get("processes", [])]
        nodes.append(
            {
                "name": name,
                "pid": info.get("pid"),
                "processes": pids,
                "consumers": [by_pid[p]["name"] for p in pids if p in by_pid],
                "tasks": info.get("total", {}),
            }
        )
    return {"available": True, "error": None, "nodes": nodes}


@bp.get("/system")
@bp.doc(
    responses={"200": {"description": "The system page.", "content": {"text/html": {"schema": {}}}}}
)
def page():
    """The operations page; it polls `/system/status`."""
    return render_page("system.html")


@bp.get("/system/status")
@bp.response(200, SystemStatus, description="The system now.")
@errors(bp, 503)
def status():
    """Queue length, lag and its age, rates per 10 s, workers, dead letters, partitions."""
    settings = current_app.extensions["sluice"]
    r = redis_client(settings.redis_url)
    with engine(settings.database_read_url).connect() as conn:
        body = overview.gather(r, settings, conn)
    body["workers"] = workers(body["consumers"])
    body["flower_url"] = flower_url(page_host(), settings.flower_port)
    return jsonify(body)
