"""Storage upkeep: daily partitions ahead of time, expired ones dropped, idle consumers
forgotten. Beat runs it hourly; `python -m tasks.maintenance` runs it once (release);
`--rebuild-rollup` first counts every stored log into /logs/stats' rollup again."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.pipeline import counters, partitions, rollup, stream
from app.pipeline.connections import engine, redis_client
from config import Settings

log = logging.getLogger(__name__)


# Creating or dropping a partition takes an exclusive lock on `logs`. Queued behind a long
# read (the read API's are cut at READ_STATEMENT_TIMEOUT_MS, other clients' may not be),
# that request would in turn hold up every insert of the drain, so each step gives up
# after LOCK_TIMEOUT and the next hourly run retries; partitions exist
# PARTITION_DAYS_AHEAD days early, so a skipped run costs nothing.
LOCK_TIMEOUT = "5s"
LOCK_NOT_AVAILABLE = "55P03"


def _step(conn, name: str, work, skipped: list[str], default):
    """Run `work()` in its own transaction under LOCK_TIMEOUT; on a lock timeout, roll
    back, note `name` in `skipped` and return `default`."""
    try:
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        value = work()
        conn.commit()
        return value
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        conn.rollback()
        skipped.append(name)
        log.warning("storage maintenance: %s skipped, `logs` is busy; the next run retries", name)
        return default


def _drop_expired(conn, retention_days: int, today) -> list[str]:
    """Drop the expired partitions and, in the same transaction, their days' counts in
    the rollup, so /logs/stats never counts a log that is gone (no catch-up counts
    meanwhile: the mark is held)."""
    rollup.hold_mark(conn)
    dropped = partitions.drop_expired(conn, retention_days, today)
    for name in dropped:
        day = datetime.strptime(name.removeprefix("logs_p"), "%Y%m%d").replace(tzinfo=UTC)
        rollup.forget_days(conn, day, day + timedelta(days=1))
    return dropped


def maintain(settings: Settings, today=None) -> dict:
    """Create partitions from yesterday to PARTITION_DAYS_AHEAD, drop expired ones."""
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=settings.retention_days)
    skipped: list[str] = []
    with engine(settings.database_url).connect() as conn:
        created = _step(
            conn,
            "creating partitions",
            lambda: partitions.ensure_partitions(
                conn,
                today - timedelta(days=1),
                today + timedelta(days=settings.partition_days_ahead),
            ),
            skipped,
            [],
        )
        dropped = _step(
            conn,
            "dropping expired partitions",
            lambda: _drop_expired(conn, settings.retention_days, today),
            skipped,
            [],
        )
        # The default partition holds only logs dated outside every daily partition: few.
        rollup.hold_mark(conn)  # so the rows counted so far stay the rows counted
        stray = conn.execute(
            text(
                "DELETE FROM logs_default WHERE timestamp < :cutoff "
                "RETURNING id, timestamp, level, source, application"
            ),
            {"cutoff": cutoff},
        ).mappings()
        stray = [dict(row) for row in stray]
        rollup.subtract(conn, stray)
        stray = len(stray)
        conn.commit()
    r = redis_client(settings.redis_url)
    counters.add(r, settings, retention_partitions_dropped=len(dropped))
    forgotten = stream.forget_idle_consumers(
        r, settings, idle_ms=max(settings.claim_idle_ms * 20, 3_600_000)
    )
    result = {
        "created": created,
        "dropped": dropped,
        "expired_default_rows": stray,
        "forgotten_consumers": forgotten,
        "skipped": skipped,
    }
    log.info(
        "storage maintenance: %s partitions created, %s expired partitions dropped %s, "
        "%s expired rows deleted from logs_default, %s steps skipped",
        len(created),
        len(dropped),
        dropped,
        stray,
        len(skipped),
    )
    return result


def rebuild_rollup(settings: Settings) -> None:
    """Count every stored log into the rollup again (`--rebuild-rollup`)."""
    with engine(settings.database_url).connect() as conn:
        rollup.rebuild(conn)
        conn.commit()
    log.info("rollup rebuilt from the stored logs")


@shared_task(name="sluice.maintain", ignore_result=True)
def maintain_task() -> dict:
    """Beat-scheduled storage maintenance."""
    return maintain(current_app.extensions["sluice"])


if __name__ == "__main__":
    from app.pipeline import logconfig
    from config import load_settings

    settings = load_settings()
    logconfig.setup(settings)
    if "--rebuild-rollup" in sys.argv[1:]:
        rebuild_rollup(settings)
    maintain(settings)
