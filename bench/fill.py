"""Fill a `logs` table fast, in the server: INSERT ... SELECT FROM generate_series.

The rows look like bench/query.py's (its levels, sources, applications with their
Zipf-like weights, its message templates and metadata shape), so its queries find what
they look for, but PostgreSQL makes them: no row crosses the wire. They are spread evenly
in time over [start, end), in time order within each job, as a drain would have written
them into the daily partitions.

`fill` takes a new, empty database and uses the app's own schema: the migrations up to
INDEXED (the last one that only adds indexes), then its keys and indexes on `logs` are
dropped, the rows inserted, the same keys and indexes rebuilt (two at a time, with more
maintenance memory than a migration gets), and the later migrations run on the filled
table as on a real upgrade (migration 0003 on the rollup branch counts the rows there).
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate

import psycopg2

from bench import query

ROWS_PER_JOB = 250_000
INDEXED = "0002"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _literal(text: str) -> str:
    # The INSERT is run with parameters, so a literal % is written %% for psycopg2.
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _uniform(low: int, high: int) -> str:
    """SQL: a whole number in [low, high], as text."""
    return f"({low} + floor(random() * {high - low + 1}))::int::text"


def pick(options: tuple[str, ...], weights: tuple[float, ...] | None = None) -> str:
    """SQL: one of `options` at random, with `weights` if given."""
    array = "(ARRAY[" + ", ".join(_literal(o) for o in options) + "]::text[])"
    if weights is None:
        return f"{array}[1 + floor(random() * {len(options)})::int]"
    total = sum(weights)
    edges = ", ".join(f"{edge / total:.6f}" for edge in accumulate(weights[:-1]))
    return f"{array}[1 + width_bucket(random(), ARRAY[{edges}]::float8[])]"


PARTS = {
    "path": pick(query.PATHS),
    "n": _uniform(1, 99_999),
    "ms": _uniform(1, 9_000),
    "user": _uniform(1, 100_000),
    "hex": "lpad(to_hex(floor(random() * 4294967296)::bigint), 8, '0')",
    "uuid": "gen_random_uuid()::text",
    "a": _uniform(1, 99),
    "b": _uniform(0, 255),
    "c": _uniform(1, 254),
}


def template_sql(template: str) -> str:
    """SQL: `template` (a bench/query.py message) with each {placeholder} filled at random."""
    pieces = PLACEHOLDER.split(template)  # literal, name, literal, name, ...
    sql = [_literal(p) if i % 2 == 0 else PARTS[p] for i, p in enumerate(pieces) if p]
    return " || ".join(sql)


def one_of_templates(templates: tuple[str, ...]) -> str:
    """SQL: one of `templates` at random, filled."""
    whens = " ".join(f"WHEN {i} THEN {template_sql(t)}" for i, t in enumerate(templates))
    return f"CASE floor(random() * {len(templates)})::int {whens} END"


def message_sql() -> str:
    """SQL: a message from the templates of the row's level (column `level`)."""
    groups = {}
    for level, templates in query.TEMPLATES.items():
        groups.setdefault(templates, []).append(level)
    whens = " ".join(
        f"WHEN level IN ({', '.join(map(_literal, levels))}) THEN {one_of_templates(t)}"
        for t, levels in groups.items()
    )
    return f"CASE {whens} END"


def metadata_sql() -> str:
    """SQL: metadata like bench/query.py's: a request UUID, a user id, an http object."""
    status = " ".join(f"WHEN {_literal(k)} THEN {v}" for k, v in query.HTTP_STATUS.items())
    return (
        "jsonb_build_object('request_id', gen_random_uuid()::text, "
        "'user_id', 1 + floor(random() * 100000)::int, "
        "'http', jsonb_build_object('method', CASE WHEN random() < 0.3 THEN 'POST' "
        f"ELSE 'GET' END, 'status', CASE level {status} ELSE 200 END))"
    )


def insert_sql() -> str:
    """The INSERT of one job: rows %(first)s..%(last)s, spread over [%(lo)s, %(lo)s +
    (last - first + 1) * %(step_us)s microseconds), in time order.

    The inner SELECT has volatile expressions, so PostgreSQL keeps it a subquery: a row's
    level is drawn once, and its message and HTTP status follow from it."""
    return f"""
        INSERT INTO logs (timestamp, level, source, application, message, metadata,
                          stream_id, created_at)
        SELECT ts, level, source, application, {message_sql()}, {metadata_sql()},
               (extract(epoch FROM ts) * 1000)::bigint || '-' || g, ts + interval '300 ms'
        FROM (
            SELECT g,
                   %(lo)s::timestamptz
                       + (g - %(first)s + random()) * %(step_us)s * interval '1 microsecond'
                       AS ts,
                   {pick(query.LEVELS, query.LEVEL_WEIGHTS)} AS level,
                   {pick(query.SOURCES, query.SOURCE_WEIGHTS)} AS source,
                   {pick(query.APPLICATIONS, query.APPLICATION_WEIGHTS)} AS application
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
        ) AS r
    """


@dataclass(frozen=True)
class Filled:
    """How long each step of a fill took, in seconds."""

    rows: int
    insert_s: float
    keys_s: float
    migrate_s: float

    @property
    def total_s(self) -> float:
        return self.insert_s + self.keys_s + self.migrate_s

    def __str__(self) -> str:
        return (
            f"{self.rows:,} rows in {self.total_s:.0f} s ({self.rows / self.total_s:,.0f} rows/s:"
            f" insert {self.insert_s:.0f} s, keys and indexes {self.keys_s:.0f} s, later"
            f" migrations {self.migrate_s:.0f} s)"
        )


def index_ddl(cur) -> tuple[list[str], list[str]]:
    """(DROP statements, CREATE statements) for the keys and indexes of the `logs` parent."""
    cur.execute(
        "SELECT format('ALTER TABLE logs DROP CONSTRAINT %I', conname), "
        "format('ALTER TABLE logs ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid)) "
        "FROM pg_constraint WHERE conrelid = 'logs'::regclass AND contype IN ('p', 'u')"
    )
    pairs = cur.fetchall()
    cur.execute(
        "SELECT format('DROP INDEX %I', ic.relname), "
        "replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
        "LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid "
        "WHERE i.indrelid = 'logs'::regclass AND c.oid IS NULL"
    )
    pairs += cur.fetchall()
    return [drop for drop, _ in pairs], [create for _, create in pairs]


def jobs(rows: int, start: datetime, end: datetime) -> list[dict]:
    """INSERT parameters: ROWS_PER_JOB rows each, in time order over [start, end)."""
    step_us = (end - start) / timedelta(microseconds=1) / rows
    return [
        {
            "first": first,
            "last": min(rows, first + ROWS_PER_JOB) - 1,
            "lo": start + timedelta(microseconds=step_us * first),
            "step_us": step_us,
        }
        for first in range(0, rows, ROWS_PER_JOB)
    ]


def _run(name: str, sql: str, params: dict | None = None) -> None:
    conn = psycopg2.connect(query.server_dsn(name))
    with conn, conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute(sql, params)
    conn.close()


def create_partitions(name: str, start: datetime, end: datetime) -> None:
    """The app's daily partitions for every day of [start, end]."""
    from app.pipeline import partitions
    from app.pipeline.connections import engine

    with engine(query.sqlalchemy_url(name)).connect() as conn:
        partitions.ensure_partitions(conn, start.date(), end.date())
        conn.commit()


def fill(name: str, rows: int, start: datetime, end: datetime, processes: int = 2) -> Filled:
    """Fill the new database `name` with `rows` logs over [start, end), then bring it to
    head; return how long each step took."""
    query.migrate(name, INDEXED)
    create_partitions(name, start, end)
    conn = psycopg2.connect(query.server_dsn(name))
    conn.autocommit = True
    with conn.cursor() as cur:
        drops, creates = index_ddl(cur)
        for ddl in drops:
            cur.execute(ddl)
    conn.close()
    began = time.perf_counter()
    sql = insert_sql()
    with ThreadPoolExecutor(processes) as pool:
        list(pool.map(lambda params: _run(name, sql, params), jobs(rows, start, end)))
    inserted = time.perf_counter()
    constraints = [ddl for ddl in creates if ddl.startswith("ALTER TABLE")]
    for ddl in constraints:  # each takes an exclusive lock: one at a time
        _run(name, ddl)
    # Plain indexes can be built side by side; the GIN ones take longest, so they start first.
    indexes = sorted((d for d in creates if d not in constraints), key=lambda d: "gin" not in d)
    with ThreadPoolExecutor(processes) as pool:
        list(pool.map(lambda ddl: _run(name, ddl), indexes))
    keyed = time.perf_counter()
    query.migrate(name, "head")
    return Filled(rows, inserted - began, keyed - inserted, time.perf_counter() - keyed)
