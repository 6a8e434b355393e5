"""The query API: `GET /logs` (filtered, keyset-paged), `GET /logs/<id>`, `GET /logs/stats`
(histogram + top sources/applications) and `GET /logs/export` (NDJSON, streamed).

Reads go to DATABASE_READ_URL (the primary when unset). Every time-bounded query puts the
bounds on `timestamp`, the partition key, so only the days asked about are scanned; pages
follow the (timestamp, id) index with a row comparison, never OFFSET. docs/query.md has
the parameters and docs/indexes.md why the indexes are what they are.
"""

from __future__ import annotations

import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import Response, current_app, request
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy import (
    BigInteger,
    Select,
    and_,
    cast,
    func,
    literal,
    select,
    tuple_,
    union_all,
)

from app.pipeline import rollup
from app.pipeline.connections import read_engine
from app.pipeline.filters import TS_CONFIG, Filters
from app.pipeline.jsoncodec import dumps
from app.pipeline.record import logs, to_json
from app.web.errors import APIError
from app.web.openapi import errors
from app.web.query_schemas import (
    EPOCH,
    INTERVALS,
    MAX_BUCKETS,
    ExportSchema,
    ListSchema,
    LogOut,
    LogPage,
    Position,
    Stats,
    StatsSchema,
    bucket_count,
    bucket_start,
    encode_cursor,
)
from parsers.fields import LEVELS

log = logging.getLogger(__name__)

bp = Blueprint("query", __name__, description="Search, count and export logs.")

COLUMNS = tuple(logs.c)
# An export batch: rows per transaction, and bytes (64 kB messages stay bounded too).
EXPORT_BATCH = 1000
EXPORT_BATCH_BYTES = 1 << 20
EXPORT_FETCH = 100
MAX_ID = 2**63 - 1

# Query strings are refused whole on an unknown parameter, with 400 naming it.
QUERY = {"location": "query", "unknown": RAISE, "error_status_code": 400}


def _read_engine():
    return read_engine(current_app.extensions["sluice"])


def _json(body, status: int = 200) -> Response:
    return Response(dumps(body), status=status, mimetype="application/json")


def _invalid(field: str, problem: str) -> APIError:
    """A 400 in the shape marshmallow's errors take, for checks made past the schema."""
    return APIError(
        400, "validation_error", "The request has invalid fields.", fields={field: [problem]}
    )


def _check_q(conn, filters: Filters) -> None:
    """A `q` without a single searchable word is a 400, not a silent empty answer."""
    if not filters.q:
        return
    lexemes = conn.execute(
        select(func.numnode(func.websearch_to_tsquery(TS_CONFIG, filters.q)))
    ).scalar_one()
    if not lexemes:
        raise _invalid("q", "No word to search for (punctuation alone is not searched).")


def page_query(filters: Filters, order: str, limit: int, after: Position | None):
    """SELECT of one page: filters, then past `after` in (timestamp, id) order."""
    condition = filters.where()
    if after is not None:
        key, mark = tuple_(logs.c.timestamp, logs.c.id), tuple_(after.timestamp, after.id)
        # The plain bound on timestamp is redundant with the row comparison but lets the
        # planner skip the partitions wholly on the far side of the cursor.
        if order == "desc":
            condition = and_(condition, key < mark, logs.c.timestamp <= after.timestamp)
        else:
            condition = and_(condition, key > mark, logs.c.timestamp >= after.timestamp)
    keys = (logs.c.timestamp, logs.c.id)
    sort = [k.desc() for k in keys] if order == "desc" else list(keys)
    statement = select(*COLUMNS).where(condition).order_by(*sort)
    return statement.limit(limit) if limit is not None else statement


@bp.get("/logs")
@bp.arguments(ListSchema, **QUERY)
@bp.response(200, LogPage, description="A page.")
@errors(bp, 400, 503)
def list_logs(args):
    """One page of logs, newest first unless order=asc, and the cursor of the next."""
    filters, limit, order = args["filters"], args["limit"], args["order"]
    with _read_engine().connect() as conn:
        _check_q(conn, filters)
        statement = page_query(filters, order, limit + 1, args["cursor"])
        rows = conn.execute(statement).mappings().all()
    next_cursor = None
    if len(rows) > limit:  # one more than a page was asked for: there is a next page
        rows = rows[:limit]
        next_cursor = encode_cursor(Position(rows[-1]["timestamp"], rows[-1]["id"], order))
    return _json({"logs": [to_json(r) for r in rows], "next_cursor": next_cursor, "limit": limit})


@bp.get("/logs/<int:log_id>")
@bp.response(200, LogOut, description="The log.")
@errors(bp, 404, 503)
def get_log(log_id: int):
    """One log by id, or 404."""
    found = None
    if log_id <= MAX_ID:
        with _read_engine().connect() as conn:
            found = conn.execute(select(*COLUMNS).where(logs.c.id == log_id)).mappings().first()
    if found is None:
        raise APIError(404, "not_found", f"No log with id {log_id}.")
    return _json(to_json(found))


@bp.get("/logs/export")
@bp.arguments(ExportSchema, **QUERY)
@bp.response(200, content_type="application/x-ndjson", description="One JSON log per line.")
@errors(bp, 400, 503)
def export_logs(args):
    """The filtered logs as NDJSON, read batch by batch, each batch in a short transaction
    of its own, so a slow client holds no transaction and no connection."""
    chunks = _export_chunks(_read_engine(), args["filters"], args["order"], args["limit"])
    # Read the first batch now, inside the request, so a bad `q`, a timeout or a database
    # outage is an ordinary error response rather than a stream cut short.
    first = next(chunks)
    return Response(
        itertools.chain((first,), chunks),
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="logs.ndjson"'},
    )


def _export_chunks(eng, filters: Filters, order: str, limit: int | None):
    """NDJSON, one chunk per batch of at most EXPORT_BATCH rows (or EXPORT_BATCH_BYTES).

    Each batch is read from a server-side cursor in its own transaction, which ends (and
    the connection goes back to the pool) before the batch is yielded; the next batch
    continues after the last (timestamp, id) sent, the same keyset as `/logs` pages, so
    no row is skipped or sent twice. Logs stored after the export began (ids above the
    highest at its start) are left out: an oldest-first export of a busy table ends."""
    with eng.connect() as conn:
        _check_q(conn, filters)
        ceiling = conn.execute(select(func.max(logs.c.id))).scalar()
    after, left, sent = None, limit, False
    while ceiling is not None and (left is None or left > 0):
        size = EXPORT_BATCH if left is None else min(EXPORT_BATCH, left)
        with eng.connect() as conn:
            chunk, last, count = _export_batch(conn, filters, order, size, after, ceiling)
        if last is None:
            break
        sent = True
        yield chunk
        after, left = last, None if left is None else left - count
    if not sent:
        yield b""  # nothing matched: the route still takes one (empty) chunk


def _export_batch(conn, filters: Filters, order: str, size: int, after, ceiling: int):
    """(NDJSON, Position of the last row, rows) of up to `size` rows past `after`."""
    statement = page_query(filters, order, size, after).where(logs.c.id <= ceiling)
    result = conn.execution_options(stream_results=True, max_row_buffer=EXPORT_FETCH).execute(
        statement
    )
    lines, used, row = [], 0, None
    for row in result.mappings():
        line = dumps(to_json(row)) + b"\n"
        lines.append(line)
        used += len(line)
        if used >= EXPORT_BATCH_BYTES:
            break
    result.close()
    if row is None:
        return b"", None, 0
    return b"".join(lines), Position(row["timestamp"], row["id"], order), len(lines)


@bp.get("/logs/stats")
@bp.arguments(StatsSchema, **QUERY)
@bp.response(200, Stats, description="The counts.")
@errors(bp, 400, 503)
def stats(args):
    """Counts per time bucket and level over a window (24 h by default), with the top
    sources and applications, for the same filters as `GET /logs`."""
    filters, name, top = args["filters"], args["interval"], args["top"]
    step = INTERVALS[name]
    count = bucket_count(filters.since, filters.until, step)
    if count > MAX_BUCKETS:
        raise _invalid(
            "interval" if "interval" in request.args else "since",
            f"{count} buckets of {name}; at most {MAX_BUCKETS}: "
            "use a larger interval or a shorter window.",
        )
    eng = _read_engine()
    if rollup.covers(filters):
        counted, tops = _counted_by_rollup(eng, filters, step, top)
    else:
        counted, tops = _counted_by_scan(eng, filters, step, top)
    buckets, levels = _buckets(counted, filters, step, count)
    return _json(
        {
            "interval": name,
            "since": filters.since.isoformat(),
            "until": filters.until.isoformat(),
            "total": sum(levels.values()),
            "buckets": buckets,
            "levels": levels,
            "top_sources": tops["source"],
            "top_applications": tops["application"],
        }
    )


NO_TOPS = {"source": [], "application": []}


def _counted_by_rollup(eng, filters: Filters, step, top: int):
    """The histogram and top lists from the per-minute counts (app/pipeline/rollup.py)
    plus the logs not counted yet (above the mark), with the partial minutes at the
    window's edges counted from `logs`: exact, and a few thousand rows to sum instead
    of every log of the window."""
    inner, edges = rollup.split(filters)

    def bins(mark: int) -> list[Select]:
        parts = [_bins(e, step) for e in edges]
        if inner:
            parts += [rollup.histogram(inner, step), _bins(inner, step, above=mark)]
        return parts

    def pairs(mark: int):
        parts = [_pairs(e) for e in edges]
        if inner:
            parts += [rollup.pairs(inner), _pairs(inner, above=mark)]
        return union_all(*parts)

    return _side_by_side(eng, bins, pairs, top, rollup.snapshot)


def _counted_by_scan(eng, filters: Filters, step, top: int):
    """The histogram and top lists from the logs of the window (filters the rollup does
    not count: q, contains, meta.*)."""
    with eng.connect() as conn:
        _check_q(conn, filters)
    return _side_by_side(
        eng, lambda _: [_bins(filters, step)], lambda _: _pairs(filters), top, _plain
    )


@contextmanager
def _plain(eng):
    with eng.connect() as conn:
        yield conn, None


def _side_by_side(eng, bins, pairs, top: int, connect):
    """The histogram of `bins(mark)` and the top lists of `pairs(mark)`, at the same time
    on two connections from `connect(eng)` (each with the mark in its snapshot): each
    takes about as long as the other (measured on a window's scan: ~290 ms one after the
    other, ~235 ms together; on the rollup at 10M rows, the top lists' sum is about half
    of a stats request)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        tops = pool.submit(_tops_on, eng, pairs, top, connect) if top else None
        with connect(eng) as (conn, mark):
            counted = _histogram(conn, bins(mark))
        tops = tops.result() if tops else NO_TOPS
    return counted, tops


def _bins(filters: Filters, step, above: int | None = None) -> Select:
    """(bucket start in epoch seconds, count per level...) of the logs matching `filters`
    (and with ids `above` this, when given), a row per bucket (the shape of
    `rollup.histogram`)."""
    bucket = cast(func.extract("epoch", func.date_bin(step, logs.c.timestamp, EPOCH)), BigInteger)
    per_level = [
        func.count().filter(logs.c.level == level).label(column)
        for level, column in zip(LEVELS, rollup.COUNTS, strict=True)
    ]
    return select(bucket.label("bucket"), *per_level).where(_where(filters, above)).group_by(bucket)


def _where(filters: Filters, above: int | None):
    where = filters.where()
    return where if above is None else and_(where, logs.c.id > above)


def _histogram(conn, parts: list[Select]) -> dict[tuple[datetime, str], int]:
    """{(bucket start, level): count} from (bucket, count per level...) rows, summed over
    `parts` in SQL: one row per bucket comes back (a day at 5 m: 288 rows)."""
    rows = union_all(*parts).subquery("bins")
    sums = [cast(func.sum(rows.c[column]), BigInteger) for column in rollup.COUNTS]
    statement = select(rows.c.bucket, *sums).group_by(rows.c.bucket)
    out = {}
    for seconds, *counts in conn.execute(statement):
        start = EPOCH + timedelta(seconds=seconds)
        for level, n in zip(LEVELS, counts, strict=True):
            if n:
                out[(start, level)] = n
    return out


def _tops_on(eng, pairs, top: int, connect) -> dict[str, list[dict]]:
    with connect(eng) as (conn, mark):
        return _tops(conn, pairs(mark), top)


def _pairs(filters: Filters, above: int | None = None):
    """(source, application, n) of the logs matching `filters` (and with ids `above` this,
    when given), one row per pair."""
    return (
        select(logs.c.source, logs.c.application, func.count().label("n"))
        .where(_where(filters, above))
        .group_by(logs.c.source, logs.c.application)
    )


def _tops(conn, pairs, top: int) -> dict[str, list[dict]]:
    """The `top` sources and applications by count, from (source, application, n) rows
    (grouped by both, then summed each way; the grouped rows are few: sources x
    applications). A pair may come in several rows (the rollup's parts): they add up."""
    rows = pairs.subquery("pairs")
    grouped = (
        select(rows.c.source, rows.c.application, func.sum(rows.c.n).label("n"))
        .group_by(rows.c.source, rows.c.application)
        .cte("grouped")
    )
    parts = []
    for name in ("source", "application"):
        key, total = grouped.c[name], cast(func.sum(grouped.c.n), BigInteger).label("n")
        ranked = (
            select(literal(name).label("kind"), key.label("key"), total)
            .where(key.is_not(None))
            .group_by(key)
            .order_by(total.desc(), key)
            .limit(top)
            .subquery()
        )
        parts.append(select(ranked))
    out: dict[str, list[dict]] = {"source": [], "application": []}
    for kind, key, n in conn.execute(union_all(*parts)):
        out[kind].append({kind: key, "count": n})
    for kind, ranked in out.items():
        ranked.sort(key=lambda item, kind=kind: (-item["count"], item[kind]))
    return out


def _buckets(counted: dict, filters: Filters, step, count: int) -> tuple[list[dict], dict]:
    """Every bucket of the window in time order, zeros included; and totals per level."""
    first = bucket_start(filters.since, step)
    levels = dict.fromkeys(LEVELS, 0)
    buckets = []
    for i in range(count):
        start = first + step * i
        counts = dict.fromkeys(LEVELS, 0)
        for level in LEVELS:
            counts[level] = counted.get((start, level), 0)
            levels[level] += counts[level]
        buckets.append({"time": start.isoformat(), "total": sum(counts.values()), "counts": counts})
    return buckets, levels
