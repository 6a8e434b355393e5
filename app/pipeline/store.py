"""Writes to the `logs` table. Functions take a connection; the caller owns the transaction.

The write path is one `INSERT ... SELECT FROM json_to_recordset(...) ON CONFLICT DO NOTHING
RETURNING` per chunk (the chunk travels as one JSON parameter; bench/writepath.py measured
it against execute_values and COPY, docs/scaling.md): a redelivered stream entry hits the
unique (stream_id, timestamp) key and is skipped, so the drain can run a chunk twice safely.

Many writers insert at once; what is ordered is only the short end of each write. A
writer reserves its ids first (`reserve_ids`: a block no other writer's ids interleave
with), inserts, waits for the writers that reserved before it to commit, commits, waits
for them to publish, and publishes. So ids, commits and publishes still come in one
order, which is what lets a WebSocket client resume from the last id it saw without a
gap (what it reads back from the database is always a prefix of what will be
published), while the INSERTs, most of a chunk's cost, run in parallel, and one writer's
commit overlaps the publish of the one before.

The order is kept with advisory locks, so a writer that dies (kill -9, a lost
connection) releases its place at once: each block holds a transaction-level lock on
`COMMITTING + first id` (released by its commit or rollback) and a session-level lock on
its first id (released after its publish). A writer waits by asking for a shared lock on
each such key below its own (read from `pg_locks`). One-key advisory locks in Sluice's
database are these keys and nothing else.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg2
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from app.pipeline import jsoncodec
from app.pipeline.record import STORED, logs

log = logging.getLogger(__name__)

COLUMNS = ("timestamp", "level", "source", "application", "message", "metadata", "stream_id")
# The two-key advisory lock that makes reserving a block of ids atomic (one statement).
RESERVE_LOCK = (5117, 1)
# Commit-order keys sit above every id: the block's first id plus this.
COMMITTING = 1 << 62

_HELD = (
    "SELECT (classid::bigint << 32) | objid::bigint AS k FROM pg_locks"
    " WHERE locktype = 'advisory' AND objsubid = 1 AND mode = 'ExclusiveLock' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_RESERVE = text(
    # Each step reads the one before, so they run in this order: take the reserve lock,
    # draw n ids, take the block's places, see whether any earlier block is still in
    # flight (if none is now, none can be later: blocks reserved after are later), and
    # release the reserve lock.
    "WITH m AS MATERIALIZED (SELECT pg_advisory_lock(:a, :b)::text AS locked), "
    "ids AS MATERIALIZED (SELECT nextval('logs_id_seq') AS id FROM m, generate_series(1, :n)), "
    "block AS MATERIALIZED (SELECT array_agg(id ORDER BY id) AS ids FROM ids), "
    "reg AS MATERIALIZED (SELECT ids, pg_advisory_lock(ids[1])::text AS published, "
    " pg_advisory_xact_lock(ids[1] + :committing)::text AS committed FROM block), "
    f"seen AS MATERIALIZED (SELECT ids, EXISTS ({_HELD} AND pg_backend_pid() <> pid"
    " AND ((classid::bigint << 32) | objid::bigint) < ids[1]) AS earlier FROM reg) "
    "SELECT ids, earlier, pg_advisory_unlock(:a, :b) FROM seen"
)
# Wait for every block key held in [lo, hi): a shared lock on each, which is granted
# once its holder lets go (kept to the end of this transaction).
_WAIT = (
    f"SELECT count(pg_advisory_xact_lock_shared(k)::text) FROM ({_HELD}) held"
    " WHERE k >= :lo AND k < :hi"
)

_INSERT = text(
    f"INSERT INTO logs (id, {', '.join(COLUMNS)}) "
    f"SELECT coalesce(id, nextval('logs_id_seq')), {', '.join(COLUMNS)} "
    "FROM json_to_recordset(CAST(:rows AS json)) AS r(id bigint, timestamp timestamptz, "
    "level varchar, source varchar, application varchar, message text, metadata jsonb, "
    "stream_id varchar) "
    f"ON CONFLICT (stream_id, timestamp) DO NOTHING RETURNING {', '.join(STORED)}"
)


def _row(r: dict) -> dict:
    stamp = r["timestamp"]
    return {
        "id": r.get("id"),
        "timestamp": stamp.isoformat() if isinstance(stamp, datetime) else stamp,
        "level": r["level"],
        "source": r.get("source"),
        "application": r.get("application"),
        "message": r["message"],
        "metadata": r.get("metadata") or {},
        "stream_id": r.get("stream_id"),
    }


def insert_logs(conn: Connection, rows: list[dict]) -> list[dict]:
    """Insert rows (dicts with COLUMNS, and `id` when reserved); return the stored ones
    with their ids, in id order.

    Rows whose (stream_id, timestamp) is already stored are skipped and not returned.
    """
    if not rows:
        return []
    try:
        document = jsoncodec.dumps([_row(r) for r in rows]).decode()
    except (TypeError, ValueError) as exc:  # not JSON-able: refused before the server
        raise ValueError(f"row cannot be encoded: {exc}") from None
    stored = conn.execute(_INSERT, {"rows": document}).mappings().all()
    out = [dict(row) for row in stored]
    out.sort(key=lambda r: r["id"])
    return out


def already_stored(conn: Connection, rows: list[dict]) -> list[dict]:
    """The stored rows with the stream ids of `rows` (redelivered entries found already
    in the table: committed by a run that died, or could not publish, before its ack)."""
    keyed = [r for r in rows if r.get("stream_id")]
    if not keyed:
        return []
    stamps = [r["timestamp"] for r in keyed]
    statement = select(logs).where(
        logs.c.stream_id.in_([r["stream_id"] for r in keyed]),
        # The bounds let the planner read only the partitions these rows went to.
        logs.c.timestamp.between(min(stamps), max(stamps)),
    )
    return [dict(row) for row in conn.execute(statement).mappings()]


def reserve_ids(conn: Connection, n: int) -> tuple[list[int], bool]:
    """Reserve `n` ids (ascending) that no other writer's ids interleave with, and take
    this block's place in the commit order (until this transaction ends) and in the
    publish order (until `release_ids`); also say whether an earlier block is still in
    flight (if not, there is nothing to wait for)."""
    a, b = RESERVE_LOCK
    params = {"a": a, "b": b, "n": n, "committing": COMMITTING}
    ids, earlier, _ = conn.execute(_RESERVE, params).one()
    return list(ids), earlier


def wait_to_commit(conn: Connection, first: int) -> None:
    """Block until every block reserved before `first` has committed or rolled back."""
    conn.execute(text(_WAIT), {"lo": COMMITTING, "hi": COMMITTING + first})


def wait_to_publish(conn: Connection, first: int) -> None:
    """Outside a transaction: block until every block reserved before `first` has been
    published (or its writer gave up)."""
    _autocommit(
        conn, _WAIT.replace(":lo", "%(lo)s").replace(":hi", "%(hi)s"), {"lo": 0, "hi": first}
    )


def release_ids(conn: Connection, first: int) -> None:
    """Give up this block's place in the publish order."""
    # A broken connection took its session lock with it; nothing is left to release.
    if conn.invalidated or conn.closed:
        return
    try:
        _autocommit(conn, "SELECT pg_advisory_unlock(%(k)s)", {"k": first})
    except DBAPIError:
        log.warning("could not release the id reservation; dropping the connection")
        conn.invalidate()


def _autocommit(conn: Connection, sql: str, params: dict) -> None:
    # One round trip, where a statement in a transaction of its own would cost three
    # (BEGIN, it, COMMIT): these run between the commit and the next chunk.
    dbapi = conn.connection.dbapi_connection
    try:
        dbapi.autocommit = True
        with dbapi.cursor() as cursor:
            cursor.execute(sql, params)
        dbapi.autocommit = False
    except psycopg2.Error as exc:
        # Raise what SQLAlchemy would have (OperationalError...): callers handle one family.
        raise DBAPIError.instance(sql, params, exc, psycopg2.Error) from exc


def write_in_commit_order(
    conn: Connection, rows: list[dict], after_commit, insert=insert_logs
) -> list[dict]:
    """Insert (with `insert(conn, rows)`) and commit `rows`, then call
    `after_commit(stored)` (the publish: `app.pipeline.fanout.publish_stored`), in id
    order with every other writer; return the stored rows. Sets each row's `id` to the
    one reserved for it. Rolls back and re-raises on failure."""
    ids, earlier = reserve_ids(conn, max(len(rows), 1))
    for row, reserved in zip(rows, ids, strict=False):
        row["id"] = reserved
    try:
        stored = insert(conn, rows)
        if earlier:
            wait_to_commit(conn, ids[0])
        # `stored` is exactly the rows this transaction inserted (duplicates skipped):
        # anything kept in step with them belongs here, after the wait (so rows that
        # other writers also update are locked in commit order: no deadlock), before
        # the commit.
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        finally:
            release_ids(conn, ids[0])
        raise
    try:
        if earlier:
            wait_to_publish(conn, ids[0])
        after_commit(stored)
        return stored
    finally:
        release_ids(conn, ids[0])


def insert_each(conn: Connection, rows: list[dict]) -> tuple[list[dict], list[tuple[int, str]]]:
    """Insert rows one by one in savepoints: the stored rows, and (index, reason) of the
    rows the database refused. Used to isolate a bad row after a chunk insert failed."""
    stored, failed = [], []
    for index, row in enumerate(rows):
        try:
            with conn.begin_nested():
                stored.extend(insert_logs(conn, [row]))
        except (DataError, IntegrityError) as exc:
            failed.append((index, f"database refused: {exc.orig}".strip()[:500]))
        except ValueError as exc:  # refused by the driver before it reached the server
            failed.append((index, f"cannot be sent to the database: {exc}"[:500]))
    return stored, failed
