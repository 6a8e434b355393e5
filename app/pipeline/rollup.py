"""Exact counts of stored logs per minute, kept in the transaction that stores them, so
`/logs/stats` sums a few thousand counts instead of scanning every log of its window.

Writing: `count_stored(conn, stored)` is called by `store.write_in_commit_order` (after
its turn to commit, so parallel writers lock the shared minute rows in commit order) with
the rows it actually inserted (a redelivered entry skipped by ON CONFLICT is not returned, so it is
not counted again), in the caller's transaction: a chunk rolled back takes its counts
with it. Three grains (migration 0003 has the measurements behind them): minute x source
x application, minute, hour x source x application, each with a count per level.

Reading: stats whose filters are only levels, sources, applications and the window are
answered here (`covers`); the window's whole minutes come from the rollup and the partial
minutes at its edges (`split`) from `logs`, so the answer is exact to the microsecond.
Full text, `contains` and `meta.*` are not counted here; those stats scan `logs`.

Retention: `forget_days` drops a day's counts in the transaction that drops its
partition; `subtract` takes back the counts of rows deleted one by one.
"""

from __future__ import annotations

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
    literal,
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

# One count column per level (n_trace ... n_critical): a row per minute and source x
# application, not per level as well, so a window has up to 6x fewer rows to sum and a
# chunk fewer rows to add to (measured: see migration 0003).
COUNTS = tuple(f"n_{level.lower()}" for level in LEVELS)


def _counts() -> list[Column]:
    return [Column(name, BigInteger, nullable=False) for name in COUNTS]


def _names() -> list[Column]:
    return [Column("source", String(MAX_NAME_CHARS)), Column("application", String(MAX_NAME_CHARS))]


# As migration 0003 creates them (benchmarks that build a schema from revision 0001
# create them with `metadata.create_all`).
by_minute = Table(
    "logs_rollup",
    metadata,
    Column("minute", DateTime(timezone=True), nullable=False),
    *_names(),
    *_counts(),
    UniqueConstraint(
        "minute",
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
    *_names(),
    *_counts(),
    UniqueConstraint(
        "hour",
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
    *_counts(),
)


def _add_statement():
    """One statement, one round trip. Each table's rows are locked in key order, and the
    statement's parts always run in the same order, so concurrent writers adding to the
    same minute wait for each other briefly but never deadlock."""
    arrays = ", ".join(f"CAST(:{c} AS bigint[])" for c in COUNTS)
    sums = ", ".join(f"sum({c})" for c in COUNTS)

    def adding(table: str) -> str:
        return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTS)

    return text(
        f"""
        WITH given (minute, source, application, {", ".join(COUNTS)}) AS (
            SELECT * FROM unnest(CAST(:minutes AS timestamptz[]),
                CAST(:sources AS varchar[]), CAST(:applications AS varchar[]), {arrays})
        ), minutes AS (
            INSERT INTO logs_rollup AS r
            SELECT * FROM given ORDER BY minute, source, application
            ON CONFLICT ON CONSTRAINT logs_rollup_key DO UPDATE SET {adding("r")}
        ), hours AS (
            INSERT INTO logs_rollup_hourly AS r
            SELECT date_bin('1 hour', minute, 'epoch'), source, application, {sums}
            FROM given GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT ON CONSTRAINT logs_rollup_hourly_key DO UPDATE SET {adding("r")}
        )
        INSERT INTO logs_rollup_levels AS r
        SELECT minute, {sums} FROM given GROUP BY 1 ORDER BY 1
        ON CONFLICT (minute) DO UPDATE SET {adding("r")}
        """
    )


_ADD = _add_statement()
_LEVEL_INDEX = {level: i for i, level in enumerate(LEVELS)}


def minute_of(moment: datetime) -> datetime:
    """The start of the UTC minute holding `moment` (what date_bin('1 minute') gives)."""
    return EPOCH + ((moment - EPOCH) // MINUTE) * MINUTE


def count_stored(conn: Connection, stored: list[dict]) -> None:
    """Add the rows just inserted (dicts with timestamp, level, source, application) to
    the counts, in the caller's transaction."""
    _add(conn, _tally(stored, 1))


def subtract(conn: Connection, deleted: list[dict]) -> None:
    """Take rows deleted from `logs` out of the counts, in the caller's transaction."""
    if not deleted:
        return
    _add(conn, _tally(deleted, -1))
    for table in (by_minute, by_hour, by_level):
        conn.execute(table.delete().where(*(table.c[c] == 0 for c in COUNTS)))


def _tally(rows: list[dict], sign: int) -> dict[tuple, list[int]]:
    """{(minute, source, application): [count per level]}."""
    tally: dict[tuple, list[int]] = {}
    for row in rows:
        key = (minute_of(row["timestamp"]), row.get("source"), row.get("application"))
        counts = tally.get(key)
        if counts is None:
            counts = tally[key] = [0] * len(LEVELS)
        try:
            counts[_LEVEL_INDEX[row["level"]]] += sign
        except KeyError:
            raise ValueError(f"level {row['level']!r} is not one of {', '.join(LEVELS)}") from None
    return tally


def _add(conn: Connection, tally: dict[tuple, list[int]]) -> None:
    if not tally:
        return
    keys = list(tally)
    params = {
        "minutes": [k[0] for k in keys],
        "sources": [k[1] for k in keys],
        "applications": [k[2] for k in keys],
    }
    for i, name in enumerate(COUNTS):
        params[name] = [tally[k][i] for k in keys]
    conn.execute(_ADD, params)


def forget_days(conn: Connection, first: datetime, last: datetime) -> None:
    """Drop the counts of [first, last) (days whose partitions are being dropped)."""
    conn.execute(by_minute.delete().where(by_minute.c.minute >= first, by_minute.c.minute < last))
    conn.execute(by_level.delete().where(by_level.c.minute >= first, by_level.c.minute < last))
    conn.execute(by_hour.delete().where(by_hour.c.hour >= first, by_hour.c.hour < last))


def rebuild(conn: Connection) -> None:
    """Count every stored log again (writes to `logs` wait meanwhile); for an upgrade
    during which old workers stored logs without counting them. In time order, as the
    drain adds them, so a window's counts sit on few pages."""
    per_level = ", ".join(f"count(*) FILTER (WHERE level = '{level}')" for level in LEVELS)
    sums = ", ".join(f"sum({c})" for c in COUNTS)
    conn.execute(text("LOCK TABLE logs IN SHARE MODE"))
    conn.execute(text("TRUNCATE logs_rollup, logs_rollup_hourly, logs_rollup_levels"))
    for statement in (
        f"INSERT INTO logs_rollup SELECT date_bin('1 minute', timestamp, 'epoch'), source, "
        f"application, {per_level} FROM logs GROUP BY 1, 2, 3 ORDER BY 1",
        f"INSERT INTO logs_rollup_hourly SELECT date_bin('1 hour', minute, 'epoch'), source, "
        f"application, {sums} FROM logs_rollup GROUP BY 1, 2, 3 ORDER BY 1",
        f"INSERT INTO logs_rollup_levels SELECT minute, {sums} FROM logs_rollup "
        "GROUP BY 1 ORDER BY 1",
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
    """(bucket start in epoch seconds, count per level...) rows over `inner`'s whole
    minutes, one per stored row (the caller sums them: one aggregation, not two); levels
    the filters leave out count 0."""
    by_source = bool(inner.sources or inner.applications)
    table = by_minute if by_source else by_level
    bucket = cast(func.extract("epoch", func.date_bin(step, table.c.minute, EPOCH)), BigInteger)
    return select(bucket.label("bucket"), *_level_counts(table, inner)).where(
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


def _level_counts(table: Table, filters: Filters) -> list:
    """The count columns, a level the filters leave out as 0 (labelled like the level)."""
    return [
        (table.c[c] if _wanted(filters, level) else literal(0, BigInteger)).label(c)
        for level, c in zip(LEVELS, COUNTS, strict=True)
    ]


def _wanted(filters: Filters, level: str) -> bool:
    return filters.levels is None or level in filters.levels


def _pairs_of(table: Table, moment, filters: Filters, lo: datetime, hi: datetime) -> Select:
    wanted = [c for level, c in zip(LEVELS, COUNTS, strict=True) if _wanted(filters, level)]
    n = literal(0, BigInteger)
    for c in wanted:
        n = n + table.c[c]
    return select(table.c.source, table.c.application, n.label("n")).where(
        _where(table, moment, filters, lo, hi), n > 0
    )


def _where(table: Table, moment, filters: Filters, lo: datetime, hi: datetime):
    """`filters` (sources, applications) on a rollup table, over [lo, hi); levels are
    its columns (`_level_counts`)."""
    parts = [moment >= lo, moment < hi]
    if filters.sources:
        parts.append(table.c.source.in_(filters.sources))
    if filters.applications:
        parts.append(table.c.application.in_(filters.applications))
    return and_(true(), *parts)
