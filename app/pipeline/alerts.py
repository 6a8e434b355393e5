"""Alerts: when the logs matching a filter set over a trailing window reach a threshold.

An alert is evaluated from the stored logs every ALERT_INTERVAL seconds (every
ALERT_FAST_INTERVAL for `threshold: 1`, "any matching log"). `decide` is the whole rule,
a pure function of the alert's state and the count:

    ok     -> firing   count >= threshold: one "firing" notification
    firing -> firing   none (a "reminder" every `repeat`, if set)
    firing -> ok       count < threshold: one "resolved" notification

`snooze_until` silences an alert's notifications (its state still changes and is
recorded). A firing that was silenced is notified once the snooze ends, if it still fires.

Two evaluators (two beat processes, or two workers running one tick each) never evaluate
one alert at once: each takes a due alert under a row lock (`FOR UPDATE SKIP LOCKED`) and
moves `next_eval_at` on in the same transaction, which the caller commits.
Notifications are rows of `alert_events` holding their payload; delivering them is a
separate task (`tasks/alerts.py`, `app.pipeline.webhooks`), so a slow webhook never holds
up the evaluation of the other alerts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from app.pipeline import searches as saved
from app.pipeline.record import logs, to_json
from app.pipeline.webhooks import notification_payload

SAMPLES = 10
MAX_WINDOW = timedelta(days=7)
# Notifications, and what a state change is recorded as in the history.
FIRING, RESOLVED, REMINDER, DELIVERY = "firing", "resolved", "reminder", "delivery"
ERROR = "error"  # an evaluation that failed (its history says why)
OK = "ok"

alerts = Table(
    "alerts",
    saved.metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", String(saved.MAX_NAME)),
    Column("search_id", BigInteger),
    Column("filters", JSONB(none_as_null=True)),
    Column("threshold", Integer),
    Column("window_seconds", Integer),
    Column("webhook", Text),
    Column("repeat_seconds", Integer),
    Column("snooze_until", DateTime(timezone=True)),
    Column("enabled", Boolean),
    Column("state", String(16)),
    Column("state_since", DateTime(timezone=True)),
    Column("last_count", Integer),
    Column("last_notified_at", DateTime(timezone=True)),
    Column("last_evaluated_at", DateTime(timezone=True)),
    Column("next_eval_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

alert_events = Table(
    "alert_events",
    saved.metadata,
    Column("id", BigInteger, primary_key=True),
    Column("alert_id", BigInteger),
    Column("kind", String(16)),
    Column("at", DateTime(timezone=True)),
    Column("count", Integer),
    Column("notification_id", BigInteger),
    Column("queued_at", DateTime(timezone=True)),
    Column("detail", JSONB),
)

_SPAN = re.compile(r"^\s*(\d{1,7})\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_span(text: str) -> int:
    """`30s`, `5m`, `1h`, `1d` as seconds; ValueError for anything else or beyond 7 days."""
    match = _SPAN.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError("A span like 30s, 5m, 1h or 1d.")
    seconds = int(match.group(1)) * _SECONDS[match.group(2)]
    if not 1 <= seconds <= MAX_WINDOW.total_seconds():
        raise ValueError("Between 1s and 7d.")
    return seconds


def format_span(seconds: int) -> str:
    """Seconds as the largest whole unit: 60 -> `1m`, 90 -> `90s`."""
    for unit in ("d", "h", "m"):
        if seconds % _SECONDS[unit] == 0:
            return f"{seconds // _SECONDS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class State:
    """What `decide` needs to know of an alert."""

    state: str  # OK or FIRING
    state_since: datetime
    last_notified_at: datetime | None
    threshold: int
    repeat: timedelta | None = None
    snooze_until: datetime | None = None


def decide(alert: State, count: int, now: datetime) -> tuple[str, str | None]:
    """The alert's next state for `count` matching logs, and the notification to send
    (FIRING, REMINDER, RESOLVED) or None."""
    firing = count >= alert.threshold
    silenced = alert.snooze_until is not None and now < alert.snooze_until
    notified = alert.last_notified_at is not None and alert.last_notified_at >= alert.state_since
    if alert.state != FIRING:
        return (FIRING, None if silenced else FIRING) if firing else (OK, None)
    if not firing:
        return OK, RESOLVED if notified and not silenced else None
    if silenced:
        return FIRING, None
    if not notified:  # it began firing while snoozed
        return FIRING, FIRING
    due = alert.repeat is not None and now - alert.last_notified_at >= alert.repeat
    return FIRING, REMINDER if due else None


def interval_for(threshold: int, settings) -> float:
    """Seconds between two evaluations of an alert with this threshold."""
    return settings.alert_fast_interval if threshold == 1 else settings.alert_interval


def claim_due(conn, now: datetime):
    """One enabled alert due for evaluation, locked for this transaction, or None.
    Alerts another evaluator holds are skipped, not waited for."""
    statement = (
        select(alerts)
        .where(alerts.c.enabled, alerts.c.next_eval_at <= now)
        .order_by(alerts.c.next_eval_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return conn.execute(statement).mappings().first()


def filter_set_of(conn, alert) -> dict[str, list[str]]:
    """The alert's own filter set, or its saved search's."""
    if alert["filters"] is not None:
        return alert["filters"]
    search = saved.searches
    return conn.execute(
        select(search.c.filters).where(search.c.id == alert["search_id"])
    ).scalar_one()


def matching(conn, filter_set, window_seconds: int, now: datetime) -> tuple[int, list[dict]]:
    """How many stored logs match in [now - window, now), and the newest SAMPLES of them."""
    filters = replace(
        saved.to_filters(filter_set), since=now - timedelta(seconds=window_seconds), until=now
    )
    where = filters.where()
    count = conn.execute(select(func.count()).select_from(logs).where(where)).scalar_one()
    samples = []
    if count:
        rows = conn.execute(
            select(*logs.c)
            .where(where)
            .order_by(logs.c.timestamp.desc(), logs.c.id.desc())
            .limit(SAMPLES)
        ).mappings()
        samples = [to_json(r) for r in rows]
    return count, samples


def evaluate(conn, alert, now: datetime, settings) -> list[int]:
    """Evaluate one claimed alert: count, decide, record; return the ids of the
    notifications to deliver once the caller has committed."""
    filter_set = filter_set_of(conn, alert)
    count, samples = matching(conn, filter_set, alert["window_seconds"], now)
    state = State(
        state=alert["state"],
        state_since=alert["state_since"],
        last_notified_at=alert["last_notified_at"],
        threshold=alert["threshold"],
        repeat=timedelta(seconds=alert["repeat_seconds"]) if alert["repeat_seconds"] else None,
        snooze_until=alert["snooze_until"],
    )
    new_state, notify = decide(state, count, now)
    changes = {
        "last_count": count,
        "last_evaluated_at": now,
        "next_eval_at": now + timedelta(seconds=interval_for(alert["threshold"], settings)),
    }
    if new_state != alert["state"]:
        changes.update(state=new_state, state_since=now)
        if not notify:  # a change nobody is told of (snoozed) is still part of the history
            record(
                conn,
                alert["id"],
                new_state if new_state == FIRING else RESOLVED,
                count,
                now,
                {"notified": False, "reason": "snoozed"},
            )
    out = []
    if notify:
        changes["last_notified_at"] = now
        payload = notification_payload(
            alert=dict(alert),
            kind=notify,
            count=count,
            window=format_span(alert["window_seconds"]),
            link=saved.ui_link(settings.public_url, filter_set),
            samples=samples,
            at=now,
        )
        detail = {"notified": True, "webhook": alert["webhook"], "payload": payload}
        out.append(record(conn, alert["id"], notify, count, now, detail))
    conn.execute(update(alerts).where(alerts.c.id == alert["id"]).values(**changes))
    return out


def set_aside(conn, alert, now: datetime, settings, problem: str) -> None:
    """An alert that could not be evaluated: recorded in its history, due again after
    its interval, so it never holds up the others."""
    record(conn, alert["id"], ERROR, None, now, {"error": problem[:500]})
    later = now + timedelta(seconds=interval_for(alert["threshold"], settings))
    conn.execute(
        update(alerts)
        .where(alerts.c.id == alert["id"])
        .values(last_evaluated_at=now, next_eval_at=later)
    )


def record(
    conn,
    alert_id: int,
    kind: str,
    count,
    now: datetime,
    detail: dict,
    notification_id: int | None = None,
) -> int:
    """Add one event to an alert's history; return its id."""
    return conn.execute(
        insert(alert_events)
        .values(
            alert_id=alert_id,
            kind=kind,
            at=now,
            count=count,
            detail=detail,
            notification_id=notification_id,
        )
        .returning(alert_events.c.id)
    ).scalar_one()


def mark_queued(conn, event_id: int, now: datetime) -> None:
    """Note that the notification's delivery task is queued."""
    conn.execute(update(alert_events).where(alert_events.c.id == event_id).values(queued_at=now))


def unqueued(conn, older_than: datetime, limit: int = 100) -> list[int]:
    """Notifications (sent ones, not silenced) whose delivery was never queued, and that
    are older than `older_than`: the evaluator that made them stopped before queueing."""
    statement = (
        select(alert_events.c.id)
        .where(
            alert_events.c.queued_at.is_(None),
            alert_events.c.kind.in_((FIRING, REMINDER, RESOLVED)),
            alert_events.c.detail["notified"].as_boolean(),
            alert_events.c.at < older_than,
        )
        .order_by(alert_events.c.id)
        .limit(limit)
    )
    return list(conn.execute(statement).scalars())


def notification(conn, event_id: int):
    """A notification event (with its alert's id), or None if it is gone (alert deleted)."""
    return (
        conn.execute(select(alert_events).where(alert_events.c.id == event_id)).mappings().first()
    )
