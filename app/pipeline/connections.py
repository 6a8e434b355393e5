"""Process-wide PostgreSQL engines and Redis clients, created lazily and never shared
across a fork.

Web workers (gunicorn) and Celery children are forked: a socket opened in the parent
must never be used by a child. Each cache is keyed by the process id, and
`reset_after_fork()` is called from the fork hooks (Superset's `worker_process_init`).

Reads have an engine of their own (`read_engine`), even when DATABASE_READ_URL is the
primary: its pool is capped at READ_POOL_SIZE and every statement on it at
READ_STATEMENT_TIMEOUT_MS, so a burst of slow queries waits for (or is refused) a read
connection while ingest, the drain and `/health` keep theirs.
"""

from __future__ import annotations

import os
import threading

import redis
from sqlalchemy import Engine, create_engine

from app.pipeline import jsoncodec

_lock = threading.Lock()
_engines: dict[tuple, Engine] = {}
_redis: dict[tuple[int, str], redis.Redis] = {}
# How read sessions are named in pg_stat_activity.
READ_APPLICATION_NAME = "sluice-read"


def engine(url: str) -> Engine:
    """The engine for `url` in this process (pool pre-ping: a dead server is noticed on
    checkout, before any work is done with the connection)."""
    return _engine(
        (os.getpid(), url),
        url,
        pool_size=5,
        max_overflow=10,
        pool_timeout=5,
        connect_args={"connect_timeout": 3, "application_name": "sluice"},
    )


def read_engine(settings) -> Engine:
    """The engine for reads (DATABASE_READ_URL) in this process: its own pool of
    READ_POOL_SIZE connections, each statement limited to READ_STATEMENT_TIMEOUT_MS.

    A session idle inside a transaction for as long is ended by the server too: no read
    can hold back vacuum or a partition drop by leaving a transaction open."""
    url, timeout = settings.database_read_url, settings.read_statement_timeout_ms
    options = f"-c statement_timeout={timeout} -c idle_in_transaction_session_timeout={timeout}"
    return _engine(
        (os.getpid(), "read", url, settings.read_pool_size, settings.read_pool_timeout, timeout),
        url,
        pool_size=settings.read_pool_size,
        max_overflow=0,
        pool_timeout=settings.read_pool_timeout,
        connect_args={
            "connect_timeout": 3,
            "application_name": READ_APPLICATION_NAME,
            "options": options,
        },
    )


def _engine(key: tuple, url: str, **options) -> Engine:
    with _lock:
        found = _engines.get(key)
        if found is None:
            # jsonb is decoded by orjson (`jsoncodec.loads`), not the standard library.
            found = _engines[key] = create_engine(
                url, pool_pre_ping=True, json_deserializer=jsoncodec.loads, **options
            )
        return found


def redis_client(url: str) -> redis.Redis:
    """The Redis client for `url` in this process (RESP2 replies, short timeouts)."""
    key = (os.getpid(), url)
    with _lock:
        found = _redis.get(key)
        if found is None:
            found = _redis[key] = redis.Redis.from_url(
                url,
                protocol=2,
                socket_connect_timeout=2,
                socket_timeout=10,
                health_check_interval=30,
            )
        return found


def reset_after_fork() -> None:
    """Forget what the parent process opened; the child builds its own on first use."""
    with _lock:
        for key, eng in list(_engines.items()):
            if key[0] != os.getpid():
                eng.dispose(close=False)
        _engines.clear()
        _redis.clear()
