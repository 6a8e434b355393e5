"""The floor bench/ingest.py measures Sluice's ingest request against: Flask and one XADD.

    gunicorn 'bench.floor_app:create_app()' --config gunicorn.conf.py

Run under the same gunicorn settings as Sluice's web process (gevent, WEB_CONCURRENCY),
it is what any Flask ingest endpoint on Redis Streams costs at least: parse the JSON
body, append it as one stream entry, answer 202. No validation, no cap, no counters.
Reads REDIS_URL and STREAM_NAME from the environment.
"""

from __future__ import annotations

import os

import orjson
import redis
from flask import Flask, request


def create_app() -> Flask:
    """The floor app: POST /data/fast does one XADD; GET /health answers 200."""
    app = Flask(__name__)
    stream = os.environ["STREAM_NAME"]
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    clients: dict[int, redis.Redis] = {}

    def client() -> redis.Redis:
        # One client per process, made after gunicorn forked (no shared sockets).
        pid = os.getpid()
        if pid not in clients:
            clients[pid] = redis.Redis.from_url(url, protocol=2)
        return clients[pid]

    @app.post("/data/fast")
    def ingest():
        body = request.get_data()
        orjson.loads(body)  # parse, as any endpoint must before it accepts
        entry_id = client().xadd(stream, {"d": body})
        return {"accepted": 1, "ids": [entry_id.decode()]}, 202

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app
