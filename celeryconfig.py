"""Celery configuration, derived from Sluice's settings (never from its own env vars).

`build(settings)` is applied by `tasks.celery_app.celery_init_app` (called in `wsgi.py`),
so the worker, beat and Flower all run with the configuration the web process has.
"""

from config import Settings


def build(settings: Settings) -> dict:
    """The Celery settings for these Sluice settings."""
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.celery_queue,
        "task_ignore_result": True,
        "result_backend": None,
        # A drain chunk is acked in Redis by the task itself; Celery's own ack only
        # decides whether a lost task message is re-run. Acked on receipt: with late
        # acks a drain is always unacked, and kombu 5.7 then crashes the worker when the
        # broker connection drops ("Unrecoverable error: AttributeError ... 'hostname'",
        # while restoring the unacked message); tests/faults scenario d. A lost drain
        # message costs nothing: beat restarts the chain once the lease lapses.
        "task_acks_late": False,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "include": ["tasks.drain", "tasks.maintenance", "tasks.alerts"],
        "beat_schedule": {
            "drain": {
                "task": "sluice.drain",
                "schedule": settings.drain_interval,
                # Each drain hands over to its successor when its budget is spent, under
                # a lease (app/pipeline/lease.py); beat's drains find the lease held and
                # return at once, and restart the chain only if it was lost (a killed
                # worker). No-ops are cheap, so none waits in the queue longer than one
                # budget; expiry only supersedes drains queued while no worker was up.
                "options": {"expires": settings.drain_budget + 2 * settings.drain_interval},
            },
            "maintain-storage": {
                "task": "sluice.maintain",
                "schedule": 3600.0,
                "options": {"expires": 600.0},
            },
            # Each alert is evaluated when it is due (ALERT_INTERVAL, or ALERT_FAST_INTERVAL
            # for threshold 1); the tick only looks for due ones (tasks/alerts.py).
            "evaluate-alerts": {
                "task": "sluice.evaluate_alerts",
                "schedule": min(settings.alert_fast_interval, settings.alert_interval),
                "options": {"expires": 2 * settings.alert_interval},
            },
        },
    }
