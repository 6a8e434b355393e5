"""Daily partitions of `logs`: created ahead of time, dropped whole when expired.

Retention drops partitions instead of deleting rows, so it costs no table scan. A log
whose day has no partition lands in `logs_default` and is never lost; when its day's
partition is created later, those rows move into it in the same transaction.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, text

log = logging.getLogger(__name__)

_NAME = re.compile(r"^logs_p(\d{8})$")


def partition_name(day: date) -> str:
    """`logs_p20261128` for 28 November 2026."""
    return f"logs_p{day:%Y%m%d}"


def existing_partitions(conn: Connection) -> dict[date, str]:
    """The daily partitions attached to `logs`, by day."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'logs'::regclass"
        )
    ).scalars()
    found = {}
    for name in rows:
        match = _NAME.match(name)
        if match:
            found[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return found


def ensure_partitions(conn: Connection, first: date, last: date) -> list[str]:
    """Create the missing daily partitions from `first` to `last` inclusive; return their names."""
    have = existing_partitions(conn)
    created = []
    day = first
    while day <= last:
        if day not in have:
            create_partition(conn, day)
            created.append(partition_name(day))
        day += timedelta(days=1)
    return created


def create_partition(conn: Connection, day: date) -> None:
    """Create one day's partition, moving any rows of that day out of the default partition."""
    name = partition_name(day)
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    hi = lo + timedelta(days=1)
    bounds = {"lo": lo, "hi": hi}
    # Attaching a partition fails while the default partition holds rows of its range, so
    # those rows are moved: detach default, create, move, reattach, all in one transaction.
    stray = conn.execute(
        text("SELECT 1 FROM logs_default WHERE timestamp >= :lo AND timestamp < :hi LIMIT 1"),
        bounds,
    ).first()
    if stray:
        conn.execute(text("ALTER TABLE logs DETACH PARTITION logs_default"))
    conn.execute(
        text(
            f"CREATE TABLE {name} PARTITION OF logs "
            f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
        )
    )
    if stray:
        moved = conn.execute(
            text(
                "WITH moved AS (DELETE FROM logs_default WHERE timestamp >= :lo AND timestamp < :hi"
                " RETURNING *) INSERT INTO logs SELECT * FROM moved"
            ),
            bounds,
        ).rowcount
        conn.execute(text("ALTER TABLE logs ATTACH PARTITION logs_default DEFAULT"))
        log.info("moved %s rows from logs_default into %s", moved, name)
    log.info("created partition %s", name)


def drop_expired(conn: Connection, retention_days: int, today: date) -> list[str]:
    """Drop the daily partitions wholly older than `retention_days`; return their names."""
    cutoff = today - timedelta(days=retention_days)
    dropped = []
    for day, name in sorted(existing_partitions(conn).items()):
        if day < cutoff:
            conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
            log.info("dropped expired partition %s (retention %s days)", name, retention_days)
    return dropped
