"""Process-wide PostgreSQL engines and Redis clients, created lazily and never shared
across a fork.

Web workers (gunicorn) and Celery children are forked: a socket opened in the parent
must never be used by a child. Each cache is keyed by the process id, and
`reset_after_fork()` is called from the fork hooks (Superset's `worker_process_init`).
"""

from __future__ import annotations

import os
import threading

import redis
from sqlalchemy import Engine, create_engine

_lock = threading.Lock()
_engines: dict[tuple[int, str], Engine] = {}
_redis: dict[tuple[int, str], redis.Redis] = {}


def engine(url: str) -> Engine:
    """The engine for `url` in this process (pool pre-ping: a dead server is noticed on
    checkout, before any work is done with the connection)."""
    key = (os.getpid(), url)
    with _lock:
        found = _engines.get(key)
        if found is None:
            found = _engines[key] = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=10,
                pool_timeout=5,
                connect_args={"connect_timeout": 3, "application_name": "sluice"},
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
        for (pid, _), eng in list(_engines.items()):
            if pid != os.getpid():
                eng.dispose(close=False)
        _engines.clear()
        _redis.clear()
