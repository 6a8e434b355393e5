"""bench/fill.py: the server-side fill makes the rows bench/query.py's queries look for,
in the app's own schema and partitions (bench/growth.py's figures rest on it)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from bench import fill, query
from tests.conftest import SERVER_URL, _dsn


def _pattern(template: str) -> str:
    pieces = fill.PLACEHOLDER.split(template)
    return "".join(re.escape(p) if i % 2 == 0 else ".+?" for i, p in enumerate(pieces))


def _indexes(dsn: str) -> set[str]:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT replace(pg_get_indexdef(indexrelid), ' ON ONLY ', ' ON ') FROM pg_index "
            "WHERE indrelid = 'logs'::regclass"
        )
        found = {row[0] for row in cur.fetchall()}
    conn.close()
    return found


@pytest.fixture
def empty_database(monkeypatch):
    """A new, empty database on the tests' server; bench/query.py pointed at that server."""
    monkeypatch.setattr(query, "SERVER", _dsn(SERVER_URL))
    name = f"sluice_test_fill_{uuid.uuid4().hex[:8]}"
    query.admin(f'CREATE DATABASE "{name}"')
    yield name
    from app.pipeline.connections import engine

    engine(query.sqlalchemy_url(name)).dispose()
    query.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_fill_makes_realistic_rows_in_daily_partitions(
    empty_database, database_url_for_run, monkeypatch
):
    monkeypatch.setattr(fill, "ROWS_PER_JOB", 1_500)  # several jobs, two at a time
    end = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    start = end - timedelta(days=3)
    filled = fill.fill(empty_database, 6_000, start, end)
    assert filled.rows == 6_000

    conn = psycopg2.connect(query.server_dsn(empty_database))
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(DISTINCT stream_id), min(timestamp), max(timestamp), "
            "count(DISTINCT tableoid) FROM logs"
        )
        count, distinct_ids, first, last, partitions = cur.fetchone()
        cur.execute("SELECT count(*) FROM logs_default")
        (strays,) = cur.fetchone()
        cur.execute("SELECT level, source, application, message, metadata FROM logs")
        rows = cur.fetchall()
        cur.execute("SELECT to_regclass('logs_p20261125'), to_regclass('logs_p20261128')")
        first_day, last_day = cur.fetchone()
    conn.close()

    assert (count, distinct_ids) == (6_000, 6_000)
    assert start <= first < last < end
    assert (partitions, strays) == (4, 0)  # 25 to 28 November, one partition a day
    assert first_day and last_day
    levels = Counter(level for level, *_ in rows)
    assert set(levels) == set(query.LEVELS)
    assert levels.most_common(1)[0][0] == "INFO"  # Zipf-like, as bench/query.py's
    assert {source for _, source, *_ in rows} <= set(query.SOURCES)
    assert {app for _, _, app, *_ in rows} <= set(query.APPLICATIONS)
    for level, _, _, message, metadata in rows:
        patterns = [_pattern(t) for t in query.TEMPLATES[level]]
        assert any(re.fullmatch(p, message) for p in patterns), (level, message)
        assert metadata["http"]["status"] == query.HTTP_STATUS[level]
        assert 1 <= metadata["user_id"] <= 100_000
        assert uuid.UUID(metadata["request_id"])
    # The schema is the migrations' own: the same indexes as a database migrated to head.
    assert _indexes(query.server_dsn(empty_database)) == _indexes(_dsn(database_url_for_run))


@pytest.mark.parametrize(
    ("options", "weights", "draws"),
    [
        (("a",), None, {"a"}),
        (("it's", "100%"), None, {"it's", "100%"}),
        (("x", "y", "z"), (1.0, 0.0, 1.0), {"x", "z"}),
    ],
)
def test_pick_draws_only_the_options_with_weight(empty_database, options, weights, draws):
    sql = f"SELECT DISTINCT {fill.pick(options, weights)} FROM generate_series(1, 500)"
    conn = psycopg2.connect(query.server_dsn(empty_database))
    with conn, conn.cursor() as cur:
        cur.execute(sql, {})  # with parameters, as the fill runs it (% doubled)
        found = {row[0] for row in cur.fetchall()}
    conn.close()
    assert found == draws
