"""Storage upkeep: daily partitions ahead of time, expired ones dropped, idle consumers
forgotten. Beat runs it hourly; `python -m tasks.maintenance` runs it once (release)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from celery import shared_task
from flask import current_app
from sqlalchemy import text

from app import partitions, stream
from app.connections import engine, redis_client
from config import Settings

log = logging.getLogger(__name__)


def maintain(settings: Settings, today=None) -> dict:
    """Create partitions from yesterday to PARTITION_DAYS_AHEAD, drop expired ones."""
    today = today or datetime.now(UTC).date()
    with engine(settings.database_url).connect() as conn:
        created = partitions.ensure_partitions(
            conn, today - timedelta(days=1), today + timedelta(days=settings.partition_days_ahead)
        )
        dropped = partitions.drop_expired(conn, settings.retention_days, today)
        cutoff = today - timedelta(days=settings.retention_days)
        # The default partition holds only logs dated outside every daily partition: few.
        stray = conn.execute(
            text("DELETE FROM logs_default WHERE timestamp < :cutoff"), {"cutoff": cutoff}
        ).rowcount
        conn.commit()
    forgotten = stream.forget_idle_consumers(
        redis_client(settings.redis_url),
        settings,
        idle_ms=max(settings.claim_idle_ms * 20, 3_600_000),
    )
    result = {
        "created": created,
        "dropped": dropped,
        "expired_default_rows": stray,
        "forgotten_consumers": forgotten,
    }
    log.info("storage maintenance: %s", result)
    return result


@shared_task(name="sluice.maintain", ignore_result=True)
def maintain_task() -> dict:
    """Beat-scheduled storage maintenance."""
    return maintain(current_app.extensions["sluice"])


if __name__ == "__main__":
    from config import load_settings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    maintain(load_settings())
