"""Exact counts of stored logs per minute, kept in the transaction that stores them, so
`/logs/stats` sums a few thousand counts instead of scanning every log of its window.

Writing: `count_stored(conn, stored)` is called by `store.insert_logs` with the rows it
actually inserted (a redelivered entry skipped by ON CONFLICT is not returned, so it is
not counted again), in the caller's transaction: a chunk rolled back takes its counts
with it. Three grains (migration 0003 has the measurements behind them): minute x level
x source x application, minute x level, hour x level x source x application.

Reading: stats whose filters are only levels, sources, applications and the window are
answered here (`covers`); the window's whole minutes come from the rollup and the partial
minutes at its edges (`split`) from `logs`, so the answer is exact to the microsecond.
Full text, `contains` and `meta.*` are not counted here; those stats scan `logs`.

Retention: `forget_days` drops a day's counts in the transaction that drops its
partition; `subtract` takes back the counts of rows deleted one by one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    MetaData,
    Select,
    String,
    Table,
    UniqueConstraint,
    and_,
    cast,
    func,
    select,
    text,
    true,
    union_all,
)

from app.pipeline.filters import Filters
from app.pipeline.record import MAX_NAME_CHARS
from parsers.fields import LEVELS

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

metadata = MetaData()


def _key() -> list[Column]:
    return [
        Column("level", String(16), nullable=False),
        Column("source", String(MAX_NAME_CHARS)),
        Column("application", String(MAX_NAME_CHARS)),
    ]


# As migration 0003 creates them (benchmarks that build a schema from revision 0001
# create them with `metadata.create_all`).
by_minute = Table(
    "logs_rollup",
    metadata,
    Column("minute", DateTime(timezone=True), nullable=False),
    *_key(),
    Column("n", BigInteger, nullable=False),
    UniqueConstraint(
        "minute",
        "level",
        "source",
        "application",
        name="logs_rollup_key",
        postgresql_nulls_not_distinct=True,
    ),
)
by_hour = Table(
    "logs_rollup_hourly",
    metadata,
    Column("hour", DateTime(timezone=True), nullable=False),
    *_key(),
    Column("n", BigInteger, nullable=False),
    UniqueConstraint(
        "hour",
        "level",
        "source",
        "application",
        name="logs_rollup_hourly_key",
        postgresql_nulls_not_distinct=True,
    ),
)
by_level = Table(
    "logs_rollup_levels",
    metadata,
    Column("minute", DateTime(timezone=True), primary_key=True),
    Column("level", String(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# One statement, one round trip. Each table's rows are locked in key order, and the
# statement's parts always run in the same order, so concurrent writers adding to the
# same minute wait for each other briefly but never deadlock.
_ADD = text(
    """
    WITH given (minute, level, source, application, n) AS (
        SELECT * FROM unnest(CAST(:minutes AS timestamptz[]), CAST(:levels AS varchar[]),
            CAST(:sources AS varchar[]), CAST(:applications AS varchar[]),
            CAST(:counts AS bigint[]))
    ), minutes AS (
        INSERT INTO logs_rollup AS r
        SELECT * FROM given ORDER BY minute, level, source, application
        ON CONFLICT ON CONSTRAINT logs_rollup_key DO UPDATE SET n = r.n + excluded.n
    ), hours AS (
        INSERT INTO logs_rollup_hourly AS r
        SELECT date_bin('1 hour', minute, 'epoch'), level, source, application, sum(n)
        FROM given GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT ON CONSTRAINT logs_rollup_hourly_key DO UPDATE SET n = r.n + excluded.n
    )
    INSERT INTO logs_rollup_levels AS r
    SELECT minute, level, sum(n) FROM given GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (minute, level) DO UPDATE SET n = r.n + excluded.n
    """
)


def minute_of(moment: datetime) -> datetime:
    """The start of the UTC minute holding `moment` (what date_bin('1 minute') gives)."""
    return EPOCH + ((moment - EPOCH) // MINUTE) * MINUTE


def count_stored(conn: Connection, stored: list[dict]) -> None:
    """Add the rows just inserted (dicts with timestamp, level, source, application) to
    the counts, in the caller's transaction."""
    _add(conn, Counter(_key_of(r) for r in stored))


def subtract(conn: Connection, deleted: list[dict]) -> None:
    """Take rows deleted from `logs` out of the counts, in the caller's transaction."""
    if not deleted:
        return
    _add(conn, Counter({key: -n for key, n in Counter(_key_of(r) for r in deleted).items()}))
    for table in (by_minute, by_hour, by_level):
        conn.execute(table.delete().where(table.c.n == 0))


def _key_of(row: dict) -> tuple:
    return (minute_of(row["timestamp"]), row["level"], row.get("source"), row.get("application"))


def _add(conn: Connection, counts: Counter) -> None:
    if not counts:
        return
    keys = list(counts)
    conn.execute(
        _ADD,
        {
            "minutes": [k[0] for k in keys],
            "levels": [k[1] for k in keys],
            "sources": [k[2] for k in keys],
            "applications": [k[3] for k in keys],
            "counts": [counts[k] for k in keys],
        },
    )


def forget_days(conn: Connection, first: datetime, last: datetime) -> None:
    """Drop the counts of [first, last) (days whose partitions are being dropped)."""
    conn.execute(by_minute.delete().where(by_minute.c.minute >= first, by_minute.c.minute < last))
    conn.execute(by_level.delete().where(by_level.c.minute >= first, by_level.c.minute < last))
    conn.execute(by_hour.delete().where(by_hour.c.hour >= first, by_hour.c.hour < last))


def rebuild(conn: Connection) -> None:
    """Count every stored log again (writes to `logs` wait meanwhile); for an upgrade
    during which old workers stored logs without counting them."""
    conn.execute(text("LOCK TABLE logs IN SHARE MODE"))
    conn.execute(text("TRUNCATE logs_rollup, logs_rollup_hourly, logs_rollup_levels"))
    for statement in (
        "INSERT INTO logs_rollup SELECT date_bin('1 minute', timestamp, 'epoch'), level, "
        "source, application, count(*) FROM logs GROUP BY 1, 2, 3, 4 ORDER BY 1",
        "INSERT INTO logs_rollup_hourly SELECT date_bin('1 hour', minute, 'epoch'), level, "
        "source, application, sum(n) FROM logs_rollup GROUP BY 1, 2, 3, 4 ORDER BY 1",
        "INSERT INTO logs_rollup_levels SELECT minute, level, sum(n) FROM logs_rollup "
        "GROUP BY 1, 2 ORDER BY 1",  # in time order, as the drain adds them
    ):
        conn.execute(text(statement))


# ---------------------------------------------------------------- reading


def covers(filters: Filters) -> bool:
    """Can stats for these filters be counted from the rollup?"""
    return (
        filters.since is not None
        and filters.until is not None
        and not (filters.q or filters.contains or filters.meta)
    )


def split(filters: Filters) -> tuple[Filters | None, list[Filters]]:
    """The window's whole minutes (None when it has none), and the partial minutes at its
    edges (filters for `logs`, empty ones left out)."""
    lo, hi = minute_of(filters.since), minute_of(filters.until)
    if lo < filters.since:
        lo += MINUTE
    if lo >= hi:
        return None, [filters]
    edges = [
        replace(filters, since=a, until=b)
        for a, b in ((filters.since, lo), (hi, filters.until))
        if a < b
    ]
    return replace(filters, since=lo, until=hi), edges


def histogram(inner: Filters, step: timedelta) -> Select:
    """(bucket start in epoch seconds, level, n) rows over `inner`'s whole minutes, one
    per stored count (the caller sums them: one aggregation, not two)."""
    by_source = bool(inner.sources or inner.applications)
    table = by_minute if by_source else by_level
    bucket = cast(func.extract("epoch", func.date_bin(step, table.c.minute, EPOCH)), BigInteger)
    return select(bucket.label("bucket"), table.c.level, table.c.n).where(
        _where(table, table.c.minute, inner, inner.since, inner.until)
    )


def pairs(inner: Filters) -> Select:
    """(source, application, n) rows over `inner`'s whole minutes, for the top lists:
    whole hours from the hourly counts, the minutes around them from the minute counts.
    A pair may appear in several rows; the caller sums them."""
    lo, hi = inner.since, inner.until
    first_hour = EPOCH + -((EPOCH - lo) // HOUR) * HOUR  # ceiling
    last_hour = EPOCH + ((hi - EPOCH) // HOUR) * HOUR
    parts, minute_spans = [], [(lo, hi)]
    if first_hour < last_hour:
        parts.append(_pairs_of(by_hour, by_hour.c.hour, inner, first_hour, last_hour))
        minute_spans = [(lo, first_hour), (last_hour, hi)]
    parts.extend(
        _pairs_of(by_minute, by_minute.c.minute, inner, a, b) for a, b in minute_spans if a < b
    )
    return union_all(*parts) if len(parts) > 1 else parts[0]


def _pairs_of(table: Table, moment, filters: Filters, lo: datetime, hi: datetime) -> Select:
    return select(table.c.source, table.c.application, table.c.n).where(
        _where(table, moment, filters, lo, hi)
    )


def _where(table: Table, moment, filters: Filters, lo: datetime, hi: datetime):
    """`filters` (levels, sources, applications) on a rollup table, over [lo, hi)."""
    parts = [moment >= lo, moment < hi]
    if filters.levels is not None and len(filters.levels) < len(LEVELS):
        parts.append(table.c.level.in_(filters.levels))
    if filters.sources:
        parts.append(table.c.source.in_(filters.sources))
    if filters.applications:
        parts.append(table.c.application.in_(filters.applications))
    return and_(true(), *parts)
