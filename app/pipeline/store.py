"""Writes to the `logs` table. Functions take a connection; the caller owns the transaction.

The write path is one multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING` per chunk
(psycopg2's execute_values): a redelivered stream entry hits the unique
(stream_id, timestamp) key and is skipped, so the drain can run a chunk twice safely.
"""

from __future__ import annotations

import logging

import psycopg2
from psycopg2.extras import Json, execute_values
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from app.pipeline import jsoncodec, rollup
from app.pipeline.record import STORED, logs

log = logging.getLogger(__name__)

COLUMNS = ("timestamp", "level", "source", "application", "message", "metadata", "stream_id")

# One lock key for "allocating ids and publishing them": holding it from INSERT to after
# PUBLISH makes id order, commit order and publish order the same, which is what lets a
# WebSocket client resume from the last id it saw without a gap.
COMMIT_ORDER_LOCK = 5_117_100


_INSERT = (
    f"INSERT INTO logs ({', '.join(COLUMNS)}) VALUES %s "
    f"ON CONFLICT (stream_id, timestamp) DO NOTHING RETURNING {', '.join(STORED)}"
)


def _dumps(value) -> str:
    return jsoncodec.dumps(value).decode()


def insert_logs(conn: Connection, rows: list[dict]) -> list[dict]:
    """Insert rows (dicts with COLUMNS); return the stored ones with their ids, in id order.

    Rows whose (stream_id, timestamp) is already stored are skipped and not returned.
    """
    if not rows:
        return []
    values = [
        (
            r["timestamp"],
            r["level"],
            r.get("source"),
            r.get("application"),
            r["message"],
            Json(r.get("metadata") or {}, dumps=_dumps),
            r.get("stream_id"),
        )
        for r in rows
    ]
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        stored = execute_values(cursor, _INSERT, values, page_size=len(values), fetch=True)
    except psycopg2.Error as exc:
        # The raw cursor bypasses SQLAlchemy; raise what it would have (DataError,
        # IntegrityError, OperationalError...), so callers handle one family of errors.
        raise DBAPIError.instance(_INSERT, None, exc, psycopg2.Error) from exc
    finally:
        cursor.close()
    out = [dict(zip(STORED, row, strict=True)) for row in stored]
    out.sort(key=lambda r: r["id"])
    rollup.count_stored(conn, out)  # the per-minute counts of /logs/stats, same transaction
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


def lock_commit_order(conn: Connection) -> None:
    """Take the commit-order lock for this session (released by `unlock_commit_order`)."""
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": COMMIT_ORDER_LOCK})


def unlock_commit_order(conn: Connection) -> None:
    """Release the commit-order lock."""
    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": COMMIT_ORDER_LOCK})


def write_in_commit_order(
    conn: Connection, rows: list[dict], after_commit, insert=insert_logs
) -> list[dict]:
    """Insert (with `insert(conn, rows)`) and commit `rows`, then call
    `after_commit(stored)` (the publish: `app.pipeline.fanout.publish_stored`), all under
    the commit-order lock; return the stored rows. Rolls back and re-raises on failure."""
    lock_commit_order(conn)
    try:
        stored = insert(conn, rows)
        conn.commit()
        after_commit(stored)
        return stored
    except BaseException:
        conn.rollback()
        raise
    finally:
        _release(conn)


def _release(conn: Connection) -> None:
    # A broken connection took its session lock with it; nothing is left to release.
    if conn.invalidated or conn.closed:
        return
    try:
        unlock_commit_order(conn)
        conn.commit()
    except DBAPIError:
        log.warning("could not release the commit-order lock; dropping the connection")
        conn.invalidate()


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
