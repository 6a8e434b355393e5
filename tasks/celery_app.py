"""The one Celery-Flask bridge (Flask's "Background Tasks with Celery" pattern)."""

from __future__ import annotations

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask, has_app_context

import celeryconfig
from app.connections import reset_after_fork


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app for `app`; tasks run inside its app context."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            if has_app_context():
                return self.run(*args, **kwargs)
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(celeryconfig.build(app.extensions["sluice"]))
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@worker_process_init.connect
def _fresh_connections(**_) -> None:
    # A forked pool child must not reuse the parent's database or Redis sockets.
    reset_after_fork()
