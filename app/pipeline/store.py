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
each such key below its own (read from `pg_locks`, and only when the reservation found
another block in flight: a lone writer never reads it). One-key advisory locks in
Sluice's database are these keys and nothing else.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg2
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from app.pipeline import jsoncodec
from app.pipeline.record import logs

log = logging.getLogger(__name__)

COLUMNS = ("timestamp", "level", "source", "application", "message", "metadata", "stream_id")
# Two-key advisory locks: one makes reserving a block of ids atomic (one statement);
# every writer with a block in flight holds the other in shared mode, so a writer that
# finds it free has no one to wait for and skips the look at `pg_locks`.
RESERVE_LOCK = (5117, 1)
IN_FLIGHT_LOCK = (5117, 2)
# Commit-order keys sit above every id: the block's first id plus this.
COMMITTING = 1 << 62

_RESERVE = text(
    # Each step reads the one before, so they run in this order: take the reserve lock;
    # see whether any block is in flight (all such are earlier: blocks reserved after
    # this one are later) and join them; draw n ids; take the block's places; release
    # the reserve lock.
    "WITH m AS MATERIALIZED (SELECT pg_advisory_lock(:a, :b)::text AS locked), "
    "probe AS MATERIALIZED (SELECT pg_try_advisory_lock(:a, :f) AS alone FROM m), "
    "joined AS MATERIALIZED (SELECT alone, pg_advisory_lock_shared(:a, :f)::text AS s "
    " FROM probe), "
    "freed AS MATERIALIZED (SELECT alone, CASE WHEN alone THEN pg_advisory_unlock(:a, :f) END "
    " AS u FROM joined), "
    "ids AS MATERIALIZED (SELECT nextval('logs_id_seq') AS id, alone "
    " FROM freed, generate_series(1, :n)), "
    "block AS MATERIALIZED (SELECT array_agg(id ORDER BY id) AS ids, NOT bool_and(alone) "
    " AS earlier FROM ids), "
    "reg AS MATERIALIZED (SELECT ids, earlier, pg_advisory_lock(ids[1])::text AS published, "
    " pg_advisory_xact_lock(ids[1] + :committing)::text AS committed FROM block) "
    "SELECT ids, earlier, pg_advisory_unlock(:a, :b) FROM reg"
)
# The first ids of the blocks still waiting to publish, all of them earlier than
# :first; and wait for each of them to commit (a shared lock on its commit key, granted
# once its transaction has ended, kept to the end of this one).
_WAIT_TO_COMMIT = text(
    "WITH p AS MATERIALIZED ("
    " SELECT (classid::bigint << 32) | objid::bigint AS k FROM pg_locks"
    " WHERE locktype = 'advisory' AND objsubid = 1 AND mode = 'ExclusiveLock' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND ((classid::bigint << 32) | objid::bigint) < :first) "
    "SELECT coalesce(array_agg(k), '{}'), "
    " count(pg_advisory_xact_lock_shared(k + :committing)::text) FROM p"
)

_INSERT = text(
    f"INSERT INTO logs (id, {', '.join(COLUMNS)}) "
    f"SELECT {', '.join(('id', *COLUMNS))} "
    "FROM json_to_recordset(CAST(:rows AS json)) AS r(id bigint, timestamp timestamptz, "
    "level varchar, source varchar, application varchar, message text, metadata jsonb, "
    "stream_id varchar) "
    # What the server decides or rewrites comes back (jsonb orders keys and writes
    # numbers its own way); the other columns of a stored row are what was sent.
    "ON CONFLICT (stream_id, timestamp) DO NOTHING RETURNING id, timestamp, metadata, created_at"
)
_DRAW_IDS = text("SELECT nextval('logs_id_seq') FROM generate_series(1, :n)")


def _row(r: dict) -> dict:
    stamp = r["timestamp"]
    return {
        "id": r.get("id"),
        "timestamp": jsoncodec.utc_iso(stamp) if isinstance(stamp, datetime) else stamp,
        "level": r["level"],
        "source": r.get("source"),
        "application": r.get("application"),
        "message": r["message"],
        "metadata": r.get("metadata") or {},
        "stream_id": r.get("stream_id"),
    }


def insert_logs(conn: Connection, rows: list[dict]) -> list[dict]:
    """Insert rows (dicts with COLUMNS, and `id` when reserved); return the stored ones,
    in id order, as full rows (every column of `logs`).

    Rows whose (stream_id, timestamp) is already stored are skipped and not returned.
    A row without a reserved id gets the next one here. Writers insert through
    `write_in_commit_order`: the rollup's catch-up relies on logs committing in id order
    (`app.pipeline.rollup`).
    """
    if not rows:
        return []
    unnumbered = [row for row in rows if row.get("id") is None]
    if unnumbered:
        drawn = conn.execute(_DRAW_IDS, {"n": len(unnumbered)}).scalars()
        for row, drawn_id in zip(unnumbered, drawn, strict=True):
            row["id"] = drawn_id
    try:
        document = jsoncodec.dumps([_row(r) for r in rows]).decode()
    except (TypeError, ValueError) as exc:  # not JSON-able: refused before the server
        raise ValueError(f"row cannot be encoded: {exc}") from None
    # Plain rows of four columns: reading back every column as mappings cost the drain
    # more than the rest of its insert.
    decided = {row[0]: row for row in conn.execute(_INSERT, {"rows": document})}
    stored = []
    for row in sorted(rows, key=lambda r: r["id"]):
        found = decided.get(row["id"])
        if found is not None:
            stored.append(
                {
                    "id": found[0],
                    "timestamp": found[1],
                    "level": row["level"],
                    "source": row.get("source"),
                    "application": row.get("application"),
                    "message": row["message"],
                    "metadata": found[2],
                    "stream_id": row.get("stream_id"),
                    "created_at": found[3],
                }
            )
    return stored


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
    params = {"a": a, "b": b, "f": IN_FLIGHT_LOCK[1], "n": n, "committing": COMMITTING}
    ids, earlier, _ = conn.execute(_RESERVE, params).one()
    return list(ids), earlier


def wait_to_commit(conn: Connection, first: int) -> list[int]:
    """Block until every block reserved before `first` has committed or rolled back;
    return the first ids of those not yet published (for `wait_to_publish`)."""
    params = {"first": first, "committing": COMMITTING}
    keys, _ = conn.execute(_WAIT_TO_COMMIT, params).one()
    return list(keys)


def wait_to_publish(conn: Connection, keys: list[int]) -> None:
    """Outside a transaction: block until the blocks starting at `keys` have been
    published (or their writers gave up)."""
    if keys:
        sql = "SELECT count(pg_advisory_xact_lock_shared(k)::text) FROM unnest(%(keys)s) k"
        _autocommit(conn, sql, {"keys": keys})


def release_ids(conn: Connection, first: int) -> None:
    """Give up this block's place in the publish order, and leave the writers in flight."""
    # A broken connection took its session locks with it; nothing is left to release.
    if conn.invalidated or conn.closed:
        return
    a, f = IN_FLIGHT_LOCK
    sql = "SELECT pg_advisory_unlock(%(k)s), pg_advisory_unlock_shared(%(a)s, %(f)s)"
    try:
        _autocommit(conn, sql, {"k": first, "a": a, "f": f})
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
    conn: Connection, rows: list[dict], after_commit, insert=None
) -> list[dict]:
    """Insert (with `insert(conn, rows)`, `insert_logs` by default) and commit `rows`, then call
    `after_commit(stored)` (the publish: `app.pipeline.fanout.publish_stored`), in id
    order with every other writer; return the stored rows. Sets each row's `id` to the
    one reserved for it. Rolls back and re-raises on failure."""
    ids, earlier = reserve_ids(conn, max(len(rows), 1))
    for row, reserved in zip(rows, ids, strict=False):
        row["id"] = reserved
    insert = insert or insert_logs
    try:
        stored = insert(conn, rows)
        unpublished = wait_to_commit(conn, ids[0]) if earlier else []
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        finally:
            release_ids(conn, ids[0])
        raise
    try:
        wait_to_publish(conn, unpublished)
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
