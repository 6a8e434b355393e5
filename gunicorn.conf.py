"""gunicorn settings for the `web` process (Procfile). Values come from the environment.

gevent: a WebSocket client holds a greenlet, not a thread, so one process serves
hundreds of live viewers while still answering HTTP (see shared MEASURED figures).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = 1000
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-" if os.environ.get("ACCESS_LOG") else None
control_socket_disable = True


def post_fork(server, worker):
    """Make psycopg2 cooperative under gevent and drop any parent sockets."""
    from psycogreen.gevent import patch_psycopg

    from app.pipeline.connections import reset_after_fork

    patch_psycopg()
    reset_after_fork()
