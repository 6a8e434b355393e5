"""Fixtures: a throwaway database per run, unique Redis names per test, the app and client.

Everything talks to real PostgreSQL and Redis (TEST_DATABASE_URL names a server, whose
`sluice_test_<random>` database this run creates and drops; TEST_REDIS_URL a Redis whose
keys this run prefixes uniquely), so a run never touches `make run`'s data or another run.
"""

from __future__ import annotations

import os
import threading
import uuid
from urllib.parse import urlsplit

import psycopg2
import pytest
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from werkzeug.serving import make_server

from app import create_app
from app.pipeline.connections import engine, redis_client
from config import Settings
from config.settings import database_url
from tasks.maintenance import maintain

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://").replace(
        "postgres://", "postgresql://"
    )


def _admin(sql: str) -> None:
    conn = psycopg2.connect(_dsn(SERVER_URL))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


def migrate(url: str) -> None:
    """Apply every migration to the database at `url`, then create today's partitions."""
    config = Config(os.path.join(ROOT, "alembic.ini"))
    config.set_main_option("script_location", os.path.join(ROOT, "migrations"))
    config.attributes["url"] = url
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def database_url_for_run():
    """A fresh database for this test run, dropped at the end."""
    name = f"sluice_test_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = database_url(urlsplit(_dsn(SERVER_URL))._replace(path=f"/{name}").geturl())
    migrate(url)
    yield url
    engine(url).dispose()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def base_settings(database_url_for_run) -> Settings:
    """Settings for this run: its own database, fast timings for tests."""
    settings = Settings(
        database_url=database_url_for_run,
        redis_url=REDIS_URL,
        drain_budget=0.5,
        drain_interval=0.2,
        claim_idle_ms=1000,
        ws_ping_interval=5.0,
        log_level="WARNING",
        # Tests send logs dated years back: a retention window that long keeps their
        # times (ingest restamps a log older than RETENTION_DAYS; tests/test_limits.py).
        retention_days=36500,
    )
    maintain(settings)
    return settings


@pytest.fixture
def names() -> str:
    """A unique prefix for this test's Redis keys."""
    return f"sluice-test:{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(base_settings, names) -> Settings:
    """This test's settings: unique stream, channel, queue and key names; an empty table."""
    settings = base_settings.with_overrides(
        stream_name=f"{names}:log_queue",
        pubsub_channel=f"{names}:new_logs",
        celery_queue=f"{names}:celery",
        key_prefix=names,
    )
    with engine(settings.database_url).connect() as conn:
        conn.execute(text("TRUNCATE logs"))
        conn.commit()
    yield settings
    r = redis_client(settings.redis_url)
    keys = list(r.scan_iter(match=f"{names}*", count=1000))
    if keys:
        r.delete(*keys)


@pytest.fixture
def app(settings):
    """The Flask app for this test's settings."""
    return create_app(settings)


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def r(settings) -> redis.Redis:
    """A Redis client on the test server."""
    return redis_client(settings.redis_url)


@pytest.fixture
def db(settings):
    """A connection to this run's database, for checking what was stored."""
    with engine(settings.database_url).connect() as conn:
        yield conn


@pytest.fixture
def live_server(app):
    """The app served over real HTTP (threaded werkzeug) on a free port: "127.0.0.1:PORT"."""
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.server_port}"
    srv.shutdown()


@pytest.fixture
def connect(live_server):
    """Open WebSocket clients on /ws/logs (each subscribed before it is returned)."""
    from tests.helpers import wait_for
    from tests.test_live import Client

    clients = []

    def _connect(query: str = "") -> Client:
        client = Client(f"ws://{live_server}/ws/logs{query}")
        wait_for(lambda: client.of_type("filters"))
        clients.append(client)
        return client

    yield _connect
    for c in clients:
        c.close()
