"""Saved searches, alerts on them, and each alert's history.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02

- `searches`: a name and a filter set in the query-string form `GET /logs` takes
  ({"min_level": ["WARN"], "meta.user_id": ["789"], ...}), validated by
  `app.pipeline.filters.LiveFilterSchema` before it is stored;
- `alerts`: a saved search (or its own filter set), a threshold over a trailing window,
  a webhook, and its state. `next_eval_at` is the queue the evaluator takes due alerts
  from, one row lock each (`FOR UPDATE SKIP LOCKED`), so two beat/worker processes never
  evaluate one alert at once;
- `alert_events`: what happened (fired, reminded, resolved) and every delivery attempt
  with its answer. A notification's payload is stored with it, so a delivery retried
  later sends what was true when the alert changed state; `queued_at` is set once its
  delivery task is queued, so one the evaluator could not queue is queued by a later tick.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE searches (
            id          bigserial    PRIMARY KEY,
            name        varchar(200) NOT NULL,
            filters     jsonb        NOT NULL DEFAULT '{}'::jsonb,
            created_at  timestamptz  NOT NULL DEFAULT now(),
            updated_at  timestamptz  NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE alerts (
            id               bigserial    PRIMARY KEY,
            name             varchar(200) NOT NULL,
            search_id        bigint       REFERENCES searches (id) ON DELETE RESTRICT,
            filters          jsonb,
            threshold        integer      NOT NULL CHECK (threshold >= 1),
            window_seconds   integer      NOT NULL CHECK (window_seconds >= 1),
            webhook          text         NOT NULL,
            repeat_seconds   integer      CHECK (repeat_seconds >= 1),
            snooze_until     timestamptz,
            enabled          boolean      NOT NULL DEFAULT true,
            state            varchar(16)  NOT NULL DEFAULT 'ok',
            state_since      timestamptz  NOT NULL DEFAULT now(),
            last_count       integer,
            last_notified_at timestamptz,
            last_evaluated_at timestamptz,
            next_eval_at     timestamptz  NOT NULL DEFAULT now(),
            created_at       timestamptz  NOT NULL DEFAULT now(),
            updated_at       timestamptz  NOT NULL DEFAULT now(),
            CHECK ((search_id IS NULL) <> (filters IS NULL))
        )
        """
    )
    op.execute("CREATE INDEX alerts_due_idx ON alerts (next_eval_at) WHERE enabled")
    op.execute(
        """
        CREATE TABLE alert_events (
            id          bigserial    PRIMARY KEY,
            alert_id    bigint       NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            kind        varchar(16)  NOT NULL,
            at          timestamptz  NOT NULL DEFAULT now(),
            count       integer,
            notification_id bigint   REFERENCES alert_events (id) ON DELETE CASCADE,
            queued_at   timestamptz,
            detail      jsonb        NOT NULL DEFAULT '{}'::jsonb
        )
        """
    )
    op.execute("CREATE INDEX alert_events_alert_idx ON alert_events (alert_id, id)")
    # Notifications whose delivery was never queued (the evaluator died between its
    # commit and the queueing): few, found by the next tick.
    op.execute(
        "CREATE INDEX alert_events_unqueued_idx ON alert_events (at) "
        "WHERE queued_at IS NULL AND kind IN ('firing', 'reminder', 'resolved')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE alert_events")
    op.execute("DROP TABLE alerts")
    op.execute("DROP TABLE searches")
