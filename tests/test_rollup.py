"""The per-minute rollup behind /logs/stats: counts only what was stored (redeliveries and
refused rows are not counted), answers exactly what a scan of `logs` answers for any
window and filter it covers, is rebuilt to the same counts, and goes with retention."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from app.pipeline import partitions, rollup, store
from app.pipeline.connections import engine
from tasks.maintenance import maintain

# Three hours of logs, starting at a whole hour far from today's partitions.
START = datetime(2005, 3, 10, 10, tzinfo=UTC)
SPAN = timedelta(hours=3)
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
SOURCES = ("web-1", "web-2", "db-1", None)
APPLICATIONS = ("api", "billing", None)


def make_rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "timestamp": START + SPAN * rng.random(),
            "level": rng.choice(LEVELS),
            "source": rng.choice(SOURCES),
            "application": rng.choice(APPLICATIONS),
            "message": f"msg {i}",
            "metadata": {},
            "stream_id": f"{1110450000000 + i}-0",
        }
        for i in range(count)
    ]


def insert(db, rows: list[dict], count: bool = True) -> list[dict]:
    """Store rows as the writers do (in commit order); then, with `count`, catch up."""
    stored = store.write_in_commit_order(db, rows, lambda stored: None)
    if count:
        catch_up(db)
    return stored


def catch_up(db) -> int:
    """Catch up until every stored log is counted; how many were."""
    total = 0
    while n := rollup.catch_up(db, limit=400):
        db.commit()
        total += n
    db.commit()
    return total


ALL = " + ".join(rollup.COUNTS)


def rollup_totals(db) -> tuple[int, int, int]:
    """Sum of counts in each grain (minute, hourly, levels)."""
    sums = tuple(
        db.execute(text(f"SELECT coalesce(sum({ALL}), 0) FROM {t}")).scalar_one()
        for t in ("logs_rollup", "logs_rollup_hourly", "logs_rollup_levels")
    )
    db.rollback()
    return sums


def count_logs(db, where: str = "true", **params) -> int:
    n = db.execute(text(f"SELECT count(*) FROM logs WHERE {where}"), params).scalar_one()
    db.rollback()
    return n


def snapshot(db) -> dict[str, set]:
    out = {
        t: set(db.execute(text(f"SELECT * FROM {t}")).all())
        for t in ("logs_rollup", "logs_rollup_hourly", "logs_rollup_levels")
    }
    db.rollback()
    return out


LATE = 200  # logs stored after the last catch-up: stats read them from `logs`


@pytest.fixture(scope="module")
def stored_module(base_settings):
    """1,500 logs over 3 h stored in chunks of 100, then three chunks redelivered and a
    chunk with a refused row stored row by row (the drain's isolation path), all
    counted; then LATE more, not counted yet."""
    url = base_settings.database_url
    with engine(url).connect() as db:
        db.execute(text("TRUNCATE logs, logs_rollup, logs_rollup_hourly, logs_rollup_levels"))
        db.commit()
        rows = make_rows(1500, seed=7)
        for i in range(0, len(rows), 100):
            insert(db, rows[i : i + 100])
        for i in (0, 700, 1400):  # redelivered: already stored, skipped, not counted again
            assert insert(db, rows[i : i + 100]) == []
        bad = make_rows(1, seed=8)[0] | {"level": "X" * 40, "stream_id": "1-bad"}
        extra = [*make_rows(5, seed=9)[:2], bad, rows[3]]  # two new, one refused, one stored
        for r, n in zip(extra[:2], ("1-a", "1-b"), strict=True):
            r["stream_id"] = n
        db.execute(text("SELECT 1"))
        ok, failed = store.insert_each(db, extra)
        db.commit()
        assert len(ok) == 2 and [i for i, _ in failed] == [2]
        assert catch_up(db) == 2
        late = make_rows(LATE, seed=10)
        for r in late:
            r["stream_id"] = "late-" + r["stream_id"]
        insert(db, late, count=False)
    yield
    with engine(url).connect() as db:
        db.execute(text("TRUNCATE logs, logs_rollup, logs_rollup_hourly, logs_rollup_levels"))
        db.commit()


@pytest.fixture(scope="module")
def reader(base_settings, stored_module):
    from app import create_app

    return create_app(base_settings).test_client()


def test_counts_only_what_was_stored(base_settings, stored_module):
    with engine(base_settings.database_url).connect() as db:
        assert count_logs(db) == 1502 + LATE
        mark = rollup.mark_of(db)
        assert count_logs(db, "id <= :m", m=mark) == 1502
        assert rollup_totals(db) == (1502, 1502, 1502)
        per_level = ", ".join(f"count(*) FILTER (WHERE level = '{v}')" for v in LEVELS)
        by_minute = db.execute(
            text(
                "SELECT count(*) FROM (SELECT date_bin('1 minute', timestamp, 'epoch') m, "
                f"source, application, {per_level} FROM logs WHERE id <= :m "
                "GROUP BY 1, 2, 3 EXCEPT "
                f"SELECT minute, source, application, {', '.join(rollup.COUNTS)} "
                "FROM logs_rollup) x"
            ),
            {"m": mark},
        ).scalar_one()
        assert by_minute == 0


def moments(offset_s: float) -> datetime:
    return START + timedelta(seconds=offset_s)


windows = st.tuples(
    st.floats(min_value=-600, max_value=SPAN.total_seconds() + 600),
    st.floats(min_value=0.000001, max_value=SPAN.total_seconds() + 1200),
)


@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    window=windows,
    interval=st.sampled_from(["1m", "5m", "1h"]),
    levels=st.lists(st.sampled_from(LEVELS), max_size=3, unique=True),
    sources=st.lists(st.sampled_from(SOURCES[:3]), max_size=2, unique=True),
    applications=st.lists(st.sampled_from(APPLICATIONS[:2]), max_size=1, unique=True),
    top=st.sampled_from([0, 1, 2, 10]),
    micros=st.integers(min_value=0, max_value=999_999),
)
def test_stats_from_the_rollup_equal_a_scan_of_logs(
    reader, window, interval, levels, sources, applications, top, micros
):
    since = moments(window[0]) + timedelta(microseconds=micros)
    until = since + timedelta(seconds=window[1])
    params = [("since", since.isoformat()), ("until", until.isoformat())]
    params += [("interval", interval), ("top", str(top))]
    params += [("level", v) for v in levels] + [("source", v) for v in sources]
    params += [("application", v) for v in applications]
    from_rollup = reader.get("/logs/stats?" + urlencode(params))
    # Every message contains "msg": same logs, but `contains` makes stats scan `logs`.
    from_scan = reader.get("/logs/stats?" + urlencode([*params, ("contains", "msg")]))
    assert from_rollup.status_code == from_scan.status_code == 200
    assert from_rollup.json == from_scan.json


def test_whole_window_matches_the_table(reader, base_settings, stored_module):
    body = reader.get(
        "/logs/stats?"
        + urlencode({"since": START.isoformat(), "until": (START + SPAN).isoformat()})
    ).json
    with engine(base_settings.database_url).connect() as db:
        assert body["total"] == count_logs(db) == 1502 + LATE
        assert count_logs(db, "id > :m", m=rollup.mark_of(db)) == LATE  # not counted yet
        for level, n in body["levels"].items():
            assert n == count_logs(db, "level = :l", l=level)


def test_rebuild_gives_the_counts_of_a_catch_up(base_settings, stored_module):
    """Last of the module's tests: it counts the late logs."""
    with engine(base_settings.database_url).connect() as db:
        assert catch_up(db) == LATE
        before = snapshot(db)
        last = db.execute(text("SELECT max(id) FROM logs")).scalar_one()
        assert rollup.mark_of(db) == last
        rollup.rebuild(db)
        db.commit()
        assert snapshot(db) == before
        assert rollup.mark_of(db) == last


# ---------------------------------------------------------------- retention

TODAY = date(2004, 8, 20)


@pytest.fixture
def tidy(settings, db):
    yield
    db.rollback()
    with engine(settings.database_url).connect() as conn:
        for day, name in partitions.existing_partitions(conn).items():
            if day.year == 2004:
                conn.execute(text(f"DROP TABLE {name}"))
        conn.commit()


def test_retention_drops_the_counts_with_the_logs(settings, db, tidy):
    days = [TODAY - timedelta(days=n) for n in (20, 15, 13, 1)]
    for day in days:
        partitions.create_partition(db, day)
    db.commit()
    stray_old = datetime(2004, 7, 1, 9, 30, tzinfo=UTC)  # no partition: logs_default
    stray_new = datetime(2004, 9, 30, 9, 30, tzinfo=UTC)
    rows = [
        {
            "timestamp": datetime(d.year, d.month, d.day, h, tzinfo=UTC),
            "level": "INFO",
            "message": "m",
            "source": "s",
            "stream_id": None,
        }
        for d in days
        for h in (0, 12, 23)
    ]
    rows.append({"timestamp": stray_old, "level": "WARN", "message": "m", "stream_id": None})
    insert(db, rows)
    assert rollup_totals(db) == (13, 13, 13)
    # Stored since the last catch-up: expired or not, these were never counted.
    late = [
        {"timestamp": t, "level": "WARN", "message": "m", "stream_id": None}
        for t in (stray_old, stray_new)
    ] + [{**rows[-2], "id": None}]  # on a day that expires
    insert(db, late, count=False)

    result = maintain(settings.with_overrides(retention_days=14), today=TODAY)

    assert len(result["dropped"]) == 2 and result["expired_default_rows"] == 2
    left = count_logs(db)
    assert left == 8  # two days of three logs, the new stray and a late log
    assert rollup_totals(db) == (6, 6, 6)  # the late ones not yet
    assert catch_up(db) == 2
    assert rollup_totals(db) == (left, left, left)
    minutes = db.execute(text("SELECT min(minute) FROM logs_rollup")).scalar_one()
    db.rollback()
    assert minutes == datetime(2004, 8, 7, tzinfo=UTC)
    zero = db.execute(text(f"SELECT count(*) FROM logs_rollup WHERE {ALL} <= 0")).scalar_one()
    db.rollback()
    assert zero == 0


def test_concurrent_writers_and_catch_ups_neither_deadlock_nor_lose_counts(settings, db):
    """Four writers storing into the same two minutes in parallel while two counters
    catch up in a loop: every log counted once."""
    rows = make_rows(2000, seed=11)
    for r in rows:  # all into two minutes: every chunk touches the same hot keys
        r["timestamp"] = START + timedelta(seconds=r["timestamp"].timestamp() % 120)
    random.Random(3).shuffle(rows)
    chunks = [rows[i : i + 50] for i in range(0, len(rows), 50)]
    errors = []

    writing = threading.Event()
    counted = []

    def writer(mine):
        try:
            with engine(settings.database_url).connect() as conn:
                for chunk in mine:
                    insert(conn, chunk, count=False)
        except Exception as exc:  # reported below; a deadlock would land here
            errors.append(exc)

    def counter():
        try:
            with engine(settings.database_url).connect() as conn:
                while writing.is_set():
                    counted.append(rollup.catch_up(conn, limit=150))
                    conn.commit()
        except Exception as exc:
            errors.append(exc)

    writing.set()
    counters = [threading.Thread(target=counter) for _ in range(2)]
    threads = [threading.Thread(target=writer, args=(chunks[n::4],)) for n in range(4)]
    for t in counters + threads:
        t.start()
    for t in threads:
        t.join()
    writing.clear()
    for t in counters:
        t.join()
    assert errors == []
    assert count_logs(db) == 2000
    assert sum(n for n in counted if n) > 0  # the counters did count while writers wrote
    catch_up(db)
    assert rollup_totals(db) == (2000, 2000, 2000)


def test_a_catch_up_counts_no_log_of_a_transaction_still_open(settings, db):
    """An earlier block still uncommitted holds back the later ones (commit order), so a
    catch-up meanwhile counts neither, and the mark stays below both."""
    insert(db, make_rows(10, seed=20))
    before = rollup.mark_of(db)
    db.rollback()
    eng = engine(settings.database_url)
    with eng.connect() as first, eng.connect() as counter:
        ids, _ = store.reserve_ids(first, 5)
        rows = make_rows(5, seed=21)
        for row, reserved in zip(rows, ids, strict=True):
            row["id"] = reserved
            row["stream_id"] = f"open-{reserved}"
        store.insert_logs(first, rows)
        assert rollup.catch_up(counter) == 0
        counter.commit()
        assert rollup.mark_of(counter) == before
        counter.rollback()
        first.commit()
        store.release_ids(first, ids[0])
        assert rollup.catch_up(counter) == 5
        counter.commit()
        assert rollup.mark_of(counter) == ids[-1]
    assert rollup_totals(db) == (15, 15, 15)


def test_a_catch_up_skips_while_the_mark_is_held(settings, db):
    insert(db, make_rows(10, seed=22), count=False)
    eng = engine(settings.database_url)
    with eng.connect() as holder, eng.connect() as counter:
        rollup.hold_mark(holder)
        assert rollup.catch_up(counter) is None  # skipped, not waiting
        counter.commit()
        holder.commit()
        assert rollup.catch_up(counter) == 10
        counter.commit()


def test_stats_read_the_rollup_when_it_covers_the_filters(client, db):
    """Proof of which path answers: a count planted in the rollup shows in the stats the
    rollup covers, not in those that scan `logs` (q, contains, meta.*)."""
    insert(db, make_rows(50, seed=12))
    window = {"since": START.isoformat(), "until": (START + SPAN).isoformat(), "top": "3"}
    db.execute(
        text(
            "UPDATE logs_rollup_levels SET n_info = n_info + 1000 WHERE minute = "
            "(SELECT min(minute) FROM logs_rollup_levels)"
        )
    )
    db.execute(
        text("INSERT INTO logs_rollup_hourly VALUES (:h, 'planted', NULL, 0, 0, 1000, 0, 0, 0)"),
        {"h": START},
    )
    db.commit()
    assert client.get("/logs/stats?" + urlencode(window)).json["total"] == 1050
    tops = client.get("/logs/stats?" + urlencode(window)).json["top_sources"]
    assert tops[0] == {"source": "planted", "count": 1000}
    for scanned in ({"contains": "msg"}, {"q": "msg"}, {"meta.x": "1"}):
        body = client.get("/logs/stats?" + urlencode({**window, **scanned})).json
        assert body["total"] == (0 if "meta.x" in scanned else 50)
        assert "planted" not in [t["source"] for t in body["top_sources"]]
