"""Shared pieces of the benchmarks: throwaway databases, realistic logs, percentiles."""

from __future__ import annotations

import contextlib
import os
import random
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import psycopg2

from config.settings import database_url

SERVER_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SOURCES = [f"web-{i:02d}" for i in range(20)]
APPLICATIONS = [
    "api",
    "auth",
    "billing",
    "search",
    "mailer",
    "cron",
    "gateway",
    "cart",
    "profile",
    "reports",
]
LEVELS = ["DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"]
LEVEL_WEIGHTS = [20, 60, 12, 6, 2]  # Zipf-like: INFO dominates, CRITICAL is rare
WORDS = [
    "user",
    "request",
    "completed",
    "failed",
    "timeout",
    "retry",
    "cache",
    "miss",
    "hit",
    "payment",
    "order",
    "session",
    "token",
    "expired",
    "connection",
    "reset",
    "database",
    "query",
    "slow",
    "upstream",
    "returned",
    "status",
]


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


@contextlib.contextmanager
def throwaway_database(prefix: str = "sluice_bench"):
    """Create a migrated database with today's partitions; drop it afterwards."""
    from tests.conftest import migrate

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(_dsn(SERVER_URL))
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = database_url(urlsplit(_dsn(SERVER_URL))._replace(path=f"/{name}").geturl())
    try:
        migrate(url)
        yield url
    finally:
        from app.pipeline.connections import engine

        engine(url).dispose()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def realistic_log(rng: random.Random, when: datetime | None = None) -> dict:
    """One log like a web fleet writes: ~120-byte message, 3 metadata keys."""
    words = " ".join(rng.choices(WORDS, k=12))
    return {
        "timestamp": (when or datetime.now(UTC)).isoformat(),
        "level": rng.choices(LEVELS, LEVEL_WEIGHTS)[0],
        "source": rng.choice(SOURCES),
        "application": rng.choice(APPLICATIONS),
        "message": f"{words} in {rng.randint(1, 5000)} ms for user {rng.randint(1, 10**6)}",
        "metadata": {
            "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "user_id": rng.randint(1, 10**6),
            "region": rng.choice(["eu", "us", "ap"]),
        },
    }


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def isolated_settings(url: str, prefix: str, **overrides):
    """Settings for a throwaway run: its own database, unique Redis names, partitions made."""
    from config import Settings
    from tasks.maintenance import maintain

    names = f"{prefix}:{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=url,
        stream_name=f"{names}:log_queue",
        pubsub_channel=f"{names}:new_logs",
        celery_queue=f"{names}:celery",
        key_prefix=names,
        **overrides,
    )
    maintain(settings)
    return settings


def post_logs(session, base: str, logs: list[dict], timeout: float = 10):
    """POST logs as one JSON array to /data/fast; return the response."""
    import orjson

    return session.post(
        f"{base}/data/fast",
        data=orjson.dumps(logs),
        headers={"Content-Type": "application/json"},
        timeout=timeout,
    )
