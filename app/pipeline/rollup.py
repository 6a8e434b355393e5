"""Exact counts of stored logs per minute, so `/logs/stats` sums a few thousand counts
instead of scanning every log of its window.

Writing: the writers do not count. `catch_up(conn)` (the drain runs it about once a
second, `tasks.drain`) counts the logs stored since the last catch-up, in one statement:
the rows with ids above the mark (`logs_rollup_mark.last_id`) are added to the counts and
the mark moves to the highest of them. That is exact because logs commit in id order
(`store.write_in_commit_order`: a block of ids commits only after every earlier block has
ended), so the rows a snapshot sees above the mark are a gap-free run of ids: none counted
before, and none below the new mark can appear later. Catch-ups skip each other (the mark
row is taken with SKIP LOCKED). Counting a second's logs at once updates each minute's
counts once, where counting each chunk in its own transaction updated them every chunk
(that cost 22 % of the drain, docs/scaling.md). Three grains (migration 0003 has the
measurements behind them): minute x source x application, minute, hour x source x
application, each with a count per level.

Reading: stats whose filters are only levels, sources, applications and the window are
answered here (`covers`); the window's whole minutes come from the rollup plus the rows
above the mark (not counted yet: about a second's worth), and the partial minutes at its
edges (`split`) from `logs`, all in one snapshot (`snapshot`), so the answer is exact to
the microsecond and to the last committed log.

Retention: `forget_days` drops a day's counts in the transaction that drops its
partition; `subtract` takes back the counts of rows deleted one by one (those at or below
the mark: the others were never counted). Both hold the mark (`hold_mark`) so no catch-up
runs meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
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
# One row (migration 0005): every log with an id at or below `last_id` is counted.
mark = Table(
    "logs_rollup_mark",
    metadata,
    Column("one", Boolean, primary_key=True, server_default=true()),
    Column("last_id", BigInteger, nullable=False),
    CheckConstraint('"one"', name="logs_rollup_mark_one_row"),
)
# At most this many logs a catch-up (about 3 s of the drain at full speed; a backlog left
# by a long pause is counted over several catch-ups).
CATCH_UP_ROWS = 25_000


def _adding(table: str) -> str:
    return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTS)


def _into_every_grain() -> str:
    """The upserts of a `given` (minute, source, application, a count per level) into
    the three grains, as parts of one WITH. Each table's rows are locked in key order and
    the parts always run in the same order, so two statements adding to the same minute
    wait for each other briefly but never deadlock."""
    sums = ", ".join(f"sum({c})" for c in COUNTS)
    return f"""minutes AS (
            INSERT INTO logs_rollup AS r
            SELECT * FROM given ORDER BY minute, source, application
            ON CONFLICT ON CONSTRAINT logs_rollup_key DO UPDATE SET {_adding("r")}
        ), hours AS (
            INSERT INTO logs_rollup_hourly AS r
            SELECT date_bin('1 hour', minute, 'epoch'), source, application, {sums}
            FROM given GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT ON CONSTRAINT logs_rollup_hourly_key DO UPDATE SET {_adding("r")}
        ), levels AS (
            INSERT INTO logs_rollup_levels AS r
            SELECT minute, {sums} FROM given GROUP BY 1 ORDER BY 1
            ON CONFLICT (minute) DO UPDATE SET {_adding("r")}
        )"""


def _add_statement():
    """Add counts given as arrays (`subtract` gives negative ones): one statement, one
    round trip."""
    arrays = ", ".join(f"CAST(:{c} AS bigint[])" for c in COUNTS)
    return text(
        f"""
        WITH given (minute, source, application, {", ".join(COUNTS)}) AS (
            SELECT * FROM unnest(CAST(:minutes AS timestamptz[]),
                CAST(:sources AS varchar[]), CAST(:applications AS varchar[]), {arrays})
        ), {_into_every_grain()}
        SELECT count(*) FROM given
        """
    )


_ADD = _add_statement()
_LEVEL_INDEX = {level: i for i, level in enumerate(LEVELS)}


def minute_of(moment: datetime) -> datetime:
    """The start of the UTC minute holding `moment` (what date_bin('1 minute') gives)."""
    return EPOCH + ((moment - EPOCH) // MINUTE) * MINUTE


def _catch_up_statement():
    per_level = ", ".join(f"count(*) FILTER (WHERE level = '{level}')" for level in LEVELS)
    # `:last` arrives as a literal (psycopg2 binds on the client), so the planner reads
    # each partition's id index from there; a mark read in the statement itself would be
    # unknown when planning, and the plan a scan of every partition. Parts that modify
    # run whether or not the final SELECT reads them (and only one catch-up runs at a
    # time anyway).
    return text(
        f"""
        WITH new AS MATERIALIZED (
            SELECT id, timestamp, level, source, application
            FROM logs WHERE id > :last ORDER BY id LIMIT :limit
        ), given (minute, source, application, {", ".join(COUNTS)}) AS MATERIALIZED (
            SELECT date_bin('1 minute', timestamp, 'epoch'), source, application, {per_level}
            FROM new GROUP BY 1, 2, 3
        ), {_into_every_grain()}, moved AS (
            UPDATE logs_rollup_mark SET last_id = (SELECT max(id) FROM new)
            WHERE EXISTS (SELECT FROM new)
        )
        SELECT count(*) FROM new
        """
    )


_CATCH_UP = _catch_up_statement()
_TAKE_MARK = select(mark.c.last_id).with_for_update(skip_locked=True)


def catch_up(conn: Connection, limit: int = CATCH_UP_ROWS) -> int | None:
    """Count the logs stored since the last catch-up (up to `limit` of them, oldest ids
    first), in the caller's transaction; how many, or None if another catch-up holds the
    mark (it counts them).

    The mark is taken first and the logs are read in a second statement, with a later
    snapshot: what that snapshot sees above the mark is still a gap-free run of ids."""
    last = conn.execute(_TAKE_MARK).scalar_one_or_none()
    if last is None:
        return None
    return conn.execute(_CATCH_UP, {"last": last, "limit": limit}).scalar_one()


def mark_of(conn: Connection) -> int:
    """The id every log at or below which is counted (0 before any catch-up)."""
    return conn.execute(select(func.coalesce(func.max(mark.c.last_id), 0))).scalar_one()


def hold_mark(conn: Connection) -> int:
    """Keep catch-ups off until the caller's transaction ends (they skip, not wait);
    return the mark. Waits for a catch-up in progress to finish."""
    conn.execute(text("INSERT INTO logs_rollup_mark (last_id) VALUES (0) ON CONFLICT DO NOTHING"))
    return conn.execute(select(mark.c.last_id).with_for_update()).scalar_one()


_SNAPSHOT_MARK = text(
    "SELECT (SELECT coalesce(max(last_id), 0) FROM logs_rollup_mark), "
    "set_config('max_parallel_workers_per_gather', '0', true)"
)


@contextmanager
def snapshot(eng: Engine) -> Iterator[tuple[Connection, int]]:
    """A connection in one read-only snapshot (REPEATABLE READ) and the mark as it
    stands in it: the counts and the rows above the mark are then read as of the same
    moment, so none is missed or counted twice.

    Without parallel workers: these reads are a few thousand rows, and starting workers
    cost more than they saved (the 24 h top lists over 10M logs, `bench.query`'s data on
    two cores: 25-33 ms with two workers, 17-20 ms without)."""
    with eng.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        try:
            yield conn, conn.execute(_SNAPSHOT_MARK).one()[0]
        finally:
            conn.rollback()


def subtract(conn: Connection, deleted: list[dict]) -> None:
    """Take rows deleted from `logs` (dicts with id, timestamp, level, source,
    application) out of the counts, in the caller's transaction, which must hold the
    mark (`hold_mark`, taken before the rows were deleted): only the rows at or below it
    were counted."""
    last = mark_of(conn)
    deleted = [row for row in deleted if row["id"] <= last]
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
    """Drop the counts of [first, last) (days whose partitions are being dropped), in a
    transaction that holds the mark (`hold_mark`)."""
    conn.execute(by_minute.delete().where(by_minute.c.minute >= first, by_minute.c.minute < last))
    conn.execute(by_level.delete().where(by_level.c.minute >= first, by_level.c.minute < last))
    conn.execute(by_hour.delete().where(by_hour.c.hour >= first, by_hour.c.hour < last))


def rebuild(conn: Connection) -> None:
    """Count every stored log again (writes to `logs` wait meanwhile) and move the mark
    past them; for an upgrade during which old workers stored logs without counting them
    or counted them in their own transactions. In time order, so a window's counts sit on
    few pages."""
    per_level = ", ".join(f"count(*) FILTER (WHERE level = '{level}')" for level in LEVELS)
    sums = ", ".join(f"sum({c})" for c in COUNTS)
    hold_mark(conn)
    conn.execute(text("LOCK TABLE logs IN SHARE MODE"))
    conn.execute(text("TRUNCATE logs_rollup, logs_rollup_hourly, logs_rollup_levels"))
    for statement in (
        f"INSERT INTO logs_rollup SELECT date_bin('1 minute', timestamp, 'epoch'), source, "
        f"application, {per_level} FROM logs GROUP BY 1, 2, 3 ORDER BY 1",
        f"INSERT INTO logs_rollup_hourly SELECT date_bin('1 hour', minute, 'epoch'), source, "
        f"application, {sums} FROM logs_rollup GROUP BY 1, 2, 3 ORDER BY 1",
        f"INSERT INTO logs_rollup_levels SELECT minute, {sums} FROM logs_rollup "
        "GROUP BY 1 ORDER BY 1",
        "UPDATE logs_rollup_mark SET last_id = greatest(last_id, "
        "(SELECT coalesce(max(id), 0) FROM logs))",
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
