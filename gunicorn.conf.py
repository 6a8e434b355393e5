"""gunicorn settings for the `web` process (Procfile). Values come from the environment.

gevent: a WebSocket client holds a greenlet, not a thread, so one process serves
hundreds of live viewers while still answering HTTP (see shared MEASURED figures).
"""

import os

from config import load_settings

# Read (and check) the settings once here too: a bad or unsafe configuration stops the
# master before any worker starts, with the variable's name.
_settings = load_settings()
# With no key Sluice is open, so it listens on loopback only (README "Security").
bind = f"{_settings.bind_host}:{_settings.port}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = 1000
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-" if os.environ.get("ACCESS_LOG") else None
control_socket_disable = True


def when_ready(server):
    if not _settings.keyring:
        server.log.warning(
            "no keys configured (SLUICE_INGEST_KEYS, SLUICE_READ_KEYS, SLUICE_ADMIN_KEYS,"
            " SLUICE_KEYS_FILE): Sluice is open to anyone who can reach it, so it listens"
            " on %s only",
            bind,
        )


def post_fork(server, worker):
    """Make psycopg2 cooperative under gevent and drop any parent sockets.

    gevent patches the standard library first: the worker would patch it only after this
    hook, when the imports below had already taken the unpatched ssl. Patching twice with
    the same arguments is a no-op.
    """
    from gevent import monkey

    monkey.patch_all()

    from psycogreen.gevent import patch_psycopg

    from app.pipeline.connections import reset_after_fork

    patch_psycopg()
    reset_after_fork()
