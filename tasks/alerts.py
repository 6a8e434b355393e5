"""Alert evaluation (beat, every ALERT_FAST_INTERVAL) and webhook deliveries (one task
per notification, retried with backoff). The rule is `app.pipeline.alerts`.

Each due alert is evaluated in its own transaction under its row lock, so evaluators in
two processes share the work and never evaluate one alert twice; its notifications are
queued only after that transaction commits, as their own tasks: a webhook that is slow
or down is retried on its own schedule and holds up no evaluation.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import InterfaceError, OperationalError

from app.pipeline import alerts as rule
from app.pipeline import webhooks
from app.pipeline.connections import engine

log = logging.getLogger(__name__)

# One tick evaluates what is due and returns; what it did not reach is due at the next.
TICK_BUDGET = 20.0
MAX_BACKOFF = 600.0
# A notification not queued this long after it was made was stranded by its evaluator
# (made and queued within one tick otherwise). Queued twice at worst, if an evaluator
# stops between queueing and noting it: the receiver sees the same notification_id.
UNQUEUED_GRACE = 30.0


def evaluate_due(settings, budget: float = TICK_BUDGET) -> list[int]:
    """Evaluate every alert due now (one transaction each); return the notification ids
    to deliver. Stops after `budget` seconds."""
    eng = engine(settings.database_url)
    started, notifications = time.monotonic(), []
    while time.monotonic() - started < budget:
        now = datetime.now(UTC)
        with eng.begin() as conn:
            alert = rule.claim_due(conn, now)
            if alert is None:
                break
            try:
                with conn.begin_nested():  # a savepoint: the row lock outlives a failure
                    found = rule.evaluate(conn, alert, now, settings)
            except (OperationalError, InterfaceError):
                raise  # the database is away: the next tick tries again
            except Exception as exc:
                # One broken alert (a stored filter set a newer rule refuses, say) must
                # not stop the others: it is recorded and set aside until its next turn.
                log.exception("alert %s could not be evaluated", alert["id"])
                rule.set_aside(conn, alert, now, settings, f"{type(exc).__name__}: {exc}")
                found = []
        if found:
            log.info("alert %s (%s): notifying", alert["id"], alert["name"])
        notifications.extend(found)
    return notifications


def queue_deliveries(settings, ids: list[int], send) -> None:
    """Queue each notification's delivery (`send(id)`), then note it queued; first those
    an earlier evaluator made but could not queue (it died, or the broker was down)."""
    eng = engine(settings.database_url)
    with eng.connect() as conn:
        stranded = rule.unqueued(conn, datetime.now(UTC) - timedelta(seconds=UNQUEUED_GRACE))
    if stranded:
        log.warning("queueing %s notifications an earlier evaluation did not", len(stranded))
    for notification_id in [*stranded, *ids]:
        send(notification_id)
        with eng.begin() as conn:
            rule.mark_queued(conn, notification_id, datetime.now(UTC))


@shared_task(name="sluice.evaluate_alerts", ignore_result=True)
def evaluate_alerts_task() -> int:
    """Beat-scheduled: evaluate the due alerts, queue their notifications."""
    settings = current_app.extensions["sluice"]
    ids = evaluate_due(settings)
    queue_deliveries(settings, ids, deliver_task.delay)
    return len(ids)


def backoff(retries: int, first: float) -> float:
    """Seconds before retry number `retries + 1`: first, 2x, 4x ..., at most MAX_BACKOFF."""
    return min(first * 2**retries, MAX_BACKOFF)


def deliver(settings, notification_id: int, attempt: int) -> webhooks.Attempt | None:
    """POST one notification and record the attempt; None if the alert is gone."""
    eng = engine(settings.database_url)
    with eng.connect() as conn:
        event = rule.notification(conn, notification_id)
    if event is None:
        return None
    body = {**event["detail"]["payload"], "notification_id": notification_id}
    result = webhooks.post(
        event["detail"]["webhook"],
        body,
        settings.alert_webhook_timeout,
        idempotency_key=f"sluice-alert-{notification_id}",
    )
    with eng.begin() as conn:
        if rule.notification(conn, notification_id) is not None:
            rule.record(
                conn,
                event["alert_id"],
                rule.DELIVERY,
                None,
                datetime.now(UTC),
                {"attempt": attempt, **result.as_detail()},
                notification_id=notification_id,
            )
    return result


@shared_task(bind=True, name="sluice.deliver_alert", ignore_result=True, max_retries=None)
def deliver_task(self, notification_id: int) -> None:
    """Deliver one notification; retried with backoff up to ALERT_WEBHOOK_RETRIES times."""
    settings = current_app.extensions["sluice"]
    result = deliver(settings, notification_id, self.request.retries + 1)
    if result is None or result.ok:
        return
    if self.request.retries >= settings.alert_webhook_retries:
        log.warning(
            "notification %s: giving up after %s attempts (%s)",
            notification_id,
            self.request.retries + 1,
            result.error,
        )
        return
    log.info("notification %s: %s, retrying", notification_id, result.error)
    raise self.retry(countdown=backoff(self.request.retries, settings.alert_retry_delay))
