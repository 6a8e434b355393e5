"""Storage: daily partitions created ahead by the beat task, only expired ones dropped,
logs dated outside every partition still stored (default partition) and moved into their
day's partition once it exists, and logs far in the past or future readable."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from app.pipeline import counters, partitions, store
from app.pipeline.connections import engine, redis_client
from tasks import maintenance
from tasks.celery_app import celery_init_app
from tasks.maintenance import maintain

# Days far from the present, so these tests never touch the partitions of today.
TODAY = date(2003, 6, 15)


@pytest.fixture
def tidy(settings, db):
    """Drop the partitions a test made for its own distant days."""
    yield
    db.rollback()  # a failed test may have left its reading transaction open
    with engine(settings.database_url).connect() as conn:
        for day, name in partitions.existing_partitions(conn).items():
            if day.year in (2003, 2004):
                conn.execute(text(f"DROP TABLE {name}"))
        conn.commit()


def midday(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def store_at(db, *moments: datetime) -> None:
    db.execute(text("SELECT 1"))  # begin: insert_logs writes through the DBAPI cursor
    store.insert_logs(
        db,
        [
            {"timestamp": m, "level": "INFO", "message": f"log of {m:%Y-%m-%d}", "stream_id": None}
            for m in moments
        ],
    )
    db.commit()


def where_stored(db) -> dict[str, str]:
    """message -> the partition holding it."""
    rows = db.execute(text("SELECT message, tableoid::regclass::text FROM logs")).all()
    db.rollback()  # hold no lock: maintenance and the clean-up need the table to themselves
    return dict(rows)


def test_maintain_creates_partitions_ahead_and_is_idempotent(settings, db, tidy):
    result = maintain(settings.with_overrides(partition_days_ahead=3), today=TODAY)
    expected = [partitions.partition_name(TODAY + timedelta(days=n)) for n in range(-1, 4)]
    assert result["created"] == expected
    assert set(expected) <= set(partitions.existing_partitions(db).values())
    db.rollback()
    again = maintain(settings.with_overrides(partition_days_ahead=3), today=TODAY)
    assert again["created"] == []
    assert again["dropped"] == []


def test_retention_drops_only_expired_partitions(settings, db, tidy, caplog):
    days = [TODAY - timedelta(days=n) for n in (20, 15, 14, 13, 1)]
    for day in days:
        partitions.create_partition(db, day)
    db.commit()
    stray_old, stray_new = midday(date(2003, 5, 10)), midday(date(2003, 7, 30))
    store_at(db, *(midday(d) for d in days), stray_old, stray_new)

    with caplog.at_level(logging.INFO, logger="app.pipeline.partitions"):
        result = maintain(settings.with_overrides(retention_days=14), today=TODAY)

    # Cut-off 2003-06-01: a partition goes only when its whole day is older than that.
    assert result["dropped"] == ["logs_p20030526", "logs_p20030531"]
    assert result["expired_default_rows"] == 1
    have = set(partitions.existing_partitions(db).values())
    db.rollback()
    assert {"logs_p20030601", "logs_p20030602", "logs_p20030614"} <= have
    assert not {"logs_p20030526", "logs_p20030531"} & have
    today_partition = partitions.partition_name(datetime.now(UTC).date())
    assert today_partition in have
    stored = where_stored(db)
    assert sorted(stored) == [
        "log of 2003-06-01",
        "log of 2003-06-02",
        "log of 2003-06-14",
        "log of 2003-07-30",
    ]
    assert stored["log of 2003-07-30"] == "logs_default"
    assert "dropped expired partition logs_p20030526 (retention 14 days)" in caplog.text
    r = redis_client(settings.redis_url)
    assert counters.totals(r, settings)["retention_partitions_dropped"] == 2


def test_maintenance_steps_aside_for_a_long_read_and_retries(settings, db, tidy, monkeypatch):
    monkeypatch.setattr(maintenance, "LOCK_TIMEOUT", "100ms")
    db.execute(text("SELECT count(*) FROM logs"))  # an export in progress, say
    result = maintain(settings, today=TODAY)
    assert result["created"] == []
    assert result["skipped"] == ["creating partitions"]
    db.rollback()
    assert maintain(settings, today=TODAY)["created"]


def test_a_log_outside_every_partition_is_kept_and_moved_in_later(settings, client, db, tidy):
    day, other = date(2004, 2, 29), date(2004, 3, 5)
    store_at(db, midday(day), midday(day) + timedelta(hours=11), midday(other))
    assert set(where_stored(db).values()) == {"logs_default"}

    partitions.create_partition(db, day)
    db.commit()

    stored = where_stored(db)
    assert stored == {
        "log of 2004-02-29": "logs_p20040229",
        "log of 2004-03-05": "logs_default",
    }
    assert db.execute(text("SELECT count(*) FROM logs")).scalar_one() == 3
    # The new partition carries every index of the parent, the query indexes included.
    indexes = db.execute(
        text("SELECT indexdef FROM pg_indexes WHERE tablename = 'logs_p20040229'")
    ).scalars()
    assert any("to_tsvector" in d for d in indexes)
    db.rollback()
    response = client.get("/logs?since=2004-02-29T00:00:00Z&until=2004-03-01T00:00:00Z&q=log")
    assert [log["message"] for log in response.json["logs"]] == ["log of 2004-02-29"] * 2


def test_an_old_log_within_retention_is_stored_with_its_own_time(client, db):
    stamp, since, until = "1999-12-31T23:59:59Z", "1999-12-31T00:00:00Z", "2000-01-01T00:00:00Z"
    response = client.post("/data/", json={"message": f"at {stamp}", "timestamp": stamp})
    assert response.status_code == 201, response.json
    assert where_stored(db) == {f"at {stamp}": "logs_default"}  # no partition for 1999
    logs = client.get("/logs", query_string={"since": since, "until": until}).json["logs"]
    assert [log["message"] for log in logs] == [f"at {stamp}"]
    assert datetime.fromisoformat(logs[0]["timestamp"]) == datetime.fromisoformat(stamp)
    assert client.get("/logs", query_string={"until": since}).json["logs"] == []


@pytest.mark.parametrize(
    "stamp", ["2100-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]
)
def test_logs_outside_the_time_window_are_stored_now_with_their_time_kept(client, db, stamp):
    before = datetime.now(UTC)
    response = client.post("/data/", json={"message": f"at {stamp}", "timestamp": stamp})
    assert response.status_code == 201, response.json
    assert where_stored(db) != {f"at {stamp}": "logs_default"}  # today's partition
    (log,) = client.get("/logs", query_string={"since": "1h"}).json["logs"]
    assert before <= datetime.fromisoformat(log["timestamp"]) <= datetime.now(UTC)
    assert log["metadata"]["original_timestamp"].startswith(stamp[:10])


def test_the_beat_runs_maintenance_hourly(app):
    schedule = celery_init_app(app).conf.beat_schedule
    assert any(
        entry["task"] == "sluice.maintain" and entry["schedule"] <= 3600
        for entry in schedule.values()
    )
