"""The one Celery-Flask bridge (Flask's "Background Tasks with Celery" pattern), and the
pool children's start-up and shutdown hygiene."""

from __future__ import annotations

import os
import signal
import threading

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_init
from flask import Flask, has_app_context

import celeryconfig
from app.pipeline.connections import reset_after_fork

_stopping = threading.Event()
_busy = threading.Event()
_in_pool_child = threading.Event()
_parent_pid: int | None = None


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


def stopping() -> bool:
    """Should this pool child stop (asked to, or its parent worker is gone)? A drain
    finishes its chunk, then returns."""
    return _stopping.is_set() or (_parent_pid is not None and os.getppid() != _parent_pid)


@worker_process_init.connect
def _child_start(**_) -> None:
    # A forked pool child must not reuse the parent's database or Redis sockets.
    global _parent_pid
    reset_after_fork()
    _in_pool_child.set()
    _parent_pid = os.getppid()


# Platforms (Heroku, `kill` of a process group) send SIGTERM to every process, the pool
# children too, where billiard's handler exits at once, mid-chunk. While a task runs, a
# child instead notes the request: the drain finishes its chunk and returns, and the
# parent's warm shutdown then ends the child. (Installed per task: billiard replaces
# any handler set at process start.)
def _on_sigterm(signum, frame) -> None:
    _stopping.set()
    if not _busy.is_set():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


@task_prerun.connect
def _task_started(**_) -> None:
    if _in_pool_child.is_set():
        _busy.set()
        signal.signal(signal.SIGTERM, _on_sigterm)


@task_postrun.connect
def _task_finished(**_) -> None:
    if _in_pool_child.is_set():
        _busy.clear()
        if _stopping.is_set():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
