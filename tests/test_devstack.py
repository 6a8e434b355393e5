"""`make run`'s fallback: embedded PostgreSQL and Redis from pip wheels really serve Sluice."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg2
import pytest
import redis

from scripts.devstack import Services, with_database
from tests.stack import free_port


@pytest.fixture
def data_dir():
    # Under /tmp, not pytest's tmp_path: pgserver runs postgres as another user when root.
    path = Path(tempfile.mkdtemp(prefix="sluice-embedded-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_embedded_servers_start_serve_and_stop(data_dir):
    with Services(data_dir) as services:
        pg_url = with_database(services.embedded_postgres(), "sluice")
        redis_url = services.embedded_redis(port=free_port())
        conn = psycopg2.connect(pg_url)
        with conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone() == ("sluice",)
        conn.close()
        r = redis.Redis.from_url(redis_url)
        r.xadd("probe", {"d": "1"})  # Streams work on the embedded server
        assert r.xlen("probe") == 1
        # It keeps the queue on disk (/health would say "degraded" otherwise).
        assert r.info("persistence")["aof_enabled"] == 1
        assert r.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert any("embedded" in note for note in services.notes)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
