"""Writes to the `logs` table. Functions take a connection; the caller owns the transaction.

The write path is one `INSERT ... SELECT FROM json_to_recordset(...) ON CONFLICT DO NOTHING
RETURNING` per chunk (the chunk travels as one JSON parameter; bench/writepath.py measured
it against execute_values and COPY, docs/scaling.md): a redelivered stream entry hits the
unique (stream_id, timestamp) key and is skipped, so the drain can run a chunk twice safely.

Many writers insert at once; what is ordered is only the short end of each write. A
writer reserves its ids first (`reserve_ids`: a block no other writer's ids interleave
with, registered as a session advisory lock keyed on its first id), inserts, then waits
for every writer that reserved before it to commit and publish, and commits and publishes
in its turn. So ids, commits and publishes still come in one order, which is what lets
a WebSocket client resume from the last id it saw without a gap, while the INSERTs (the
index maintenance, most of a chunk's cost) run in parallel.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from app.pipeline import jsoncodec
from app.pipeline.record import STORED, logs

log = logging.getLogger(__name__)

COLUMNS = ("timestamp", "level", "source", "application", "message", "metadata", "stream_id")
# The two-key advisory lock that makes reserving a block of ids atomic (held for one
# statement). Registrations are one-key (bigint) advisory locks on a block's first id:
# `_WAIT_FOR_EARLIER` reads every one-key advisory lock of this database as one.
RESERVE_LOCK = (5117, 1)

_RESERVE = text(
    # Each step reads the one before, so they run in this order: take the reserve lock,
    # draw n ids, register the block by its first id, release the reserve lock.
    "WITH m AS MATERIALIZED (SELECT pg_advisory_lock(:a, :b)::text AS locked), "
    "ids AS MATERIALIZED (SELECT nextval('logs_id_seq') AS id FROM m, generate_series(1, :n)), "
    "block AS MATERIALIZED (SELECT array_agg(id ORDER BY id) AS ids FROM ids), "
    "reg AS MATERIALIZED (SELECT ids, pg_advisory_lock(ids[1])::text AS held FROM block) "
    "SELECT ids, pg_advisory_unlock(:a, :b) FROM reg"
)
# Wait (a shared lock on each, held to the end of this transaction) for every block
# registered before ours: their holders release them after their publish.
_WAIT_FOR_EARLIER = text(
    "SELECT count(pg_advisory_xact_lock_shared(k)::text) FROM ("
    " SELECT (classid::bigint << 32) | objid::bigint AS k FROM pg_locks"
    " WHERE locktype = 'advisory' AND objsubid = 1 AND mode = 'ExclusiveLock' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ") held WHERE k < :first"
)
_RELEASE = text("SELECT pg_advisory_unlock(:k)")

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


def reserve_ids(conn: Connection, n: int) -> list[int]:
    """Reserve `n` ids (ascending) no other writer's ids interleave with, and register
    them for this session until `release_ids`."""
    a, b = RESERVE_LOCK
    return list(conn.execute(_RESERVE, {"a": a, "b": b, "n": n}).scalar_one())


def wait_for_earlier(conn: Connection, first: int) -> None:
    """Block until every writer that reserved ids before `first` has published."""
    conn.execute(_WAIT_FOR_EARLIER, {"first": first})


def release_ids(conn: Connection, first: int) -> None:
    """End this session's registration of the block starting at `first`."""
    # A broken connection took its session lock with it; nothing is left to release.
    if conn.invalidated or conn.closed:
        return
    try:
        conn.execute(_RELEASE, {"k": first})
        conn.commit()
    except DBAPIError:
        log.warning("could not release the id reservation; dropping the connection")
        conn.invalidate()


def write_in_commit_order(
    conn: Connection, rows: list[dict], after_commit, insert=insert_logs
) -> list[dict]:
    """Insert (with `insert(conn, rows)`) and commit `rows`, then call
    `after_commit(stored)` (the publish: `app.pipeline.fanout.publish_stored`), in id
    order with every other writer; return the stored rows. Sets each row's `id` to the
    one reserved for it. Rolls back and re-raises on failure."""
    ids = reserve_ids(conn, max(len(rows), 1))
    for row, reserved in zip(rows, ids, strict=False):
        row["id"] = reserved
    try:
        stored = insert(conn, rows)
        # `stored` is exactly the rows this transaction inserted (duplicates skipped):
        # anything kept in step with them belongs here, before the commit.
        wait_for_earlier(conn, ids[0])
        conn.commit()
        after_commit(stored)
        return stored
    except BaseException:
        conn.rollback()
        raise
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
