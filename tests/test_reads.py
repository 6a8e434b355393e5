"""Reads cannot hurt the rest: a statement timeout answered 503 with advice, a pool of
their own (slow reads leave /health and ingest their connections), and exports that hold
no transaction while a slow client reads, yet send every stored row exactly once."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app import create_app
from app.pipeline import store
from app.pipeline.connections import READ_APPLICATION_NAME, engine, read_engine
from config.settings import ConfigError, load_settings

START = datetime(2005, 4, 1, tzinfo=UTC)


def insert(db, rows: list[dict]) -> list[dict]:
    db.execute(text("SELECT 1"))  # begin: insert_logs writes through the DBAPI cursor
    stored = store.insert_logs(db, rows)
    db.commit()
    return stored


def rows(count: int, first: int = 0, pad: int = 0) -> list[dict]:
    return [
        {
            "timestamp": START + timedelta(seconds=i),
            "level": "INFO",
            "source": "web-1",
            "message": f"log {i}",
            "metadata": {"pad": "x" * pad} if pad else {},
            "stream_id": f"{1112313600000 + i}-0",
        }
        for i in range(first, first + count)
    ]


def test_a_query_past_the_statement_timeout_is_a_503_that_says_to_narrow_it(settings, db):
    client = create_app(settings.with_overrides(read_statement_timeout_ms=300)).test_client()
    insert(db, rows(10))
    # A real wait the timeout cuts short: another session holds `logs` exclusively.
    with engine(settings.database_url).connect() as locker:
        locker.execute(text("LOCK TABLE logs IN ACCESS EXCLUSIVE MODE"))
        for path in ("/logs", "/logs/stats?since=2005-04-01T00:00:00.5Z&until=2005-04-02"):
            began = time.monotonic()
            response = client.get(path)
            assert time.monotonic() - began < 3
            assert response.status_code == 503, response.json
            body = response.json
            assert body["error"] == "query_timeout" and body["status"] == 503
            assert "300 ms" in body["message"] and "since/until" in body["message"]
        locker.rollback()
    assert client.get("/logs").status_code == 200


def test_slow_reads_leave_health_and_ingest_their_connections(settings):
    settings = settings.with_overrides(read_pool_size=2, read_pool_timeout=0.5)
    client = create_app(settings).test_client()
    reads = read_engine(settings)
    started = threading.Barrier(3)

    def slow_read():
        with reads.connect() as conn:
            started.wait()
            conn.execute(text("SELECT pg_sleep(4)"))

    sleepers = [threading.Thread(target=slow_read) for _ in range(2)]
    for t in sleepers:
        t.start()
    started.wait()  # the read pool is now full, both its connections asleep
    try:
        assert reads.pool.checkedout() == 2
        for method, path, body, status in (
            ("get", "/health", None, 200),
            ("post", "/data/", {"message": "stored while reads are stuck"}, 201),
            ("post", "/data/fast", {"message": "queued while reads are stuck"}, 202),
        ):
            began = time.monotonic()
            response = getattr(client, method)(path, json=body)
            assert response.status_code == status, response.json
            assert time.monotonic() - began < 1.0, path
        began = time.monotonic()
        response = client.get("/logs")  # a further read waits READ_POOL_TIMEOUT, then 503
        assert response.status_code == 503 and response.json["error"] == "busy"
        assert response.headers["Retry-After"] == "2"
        assert 0.4 < time.monotonic() - began < 2.0
    finally:
        for t in sleepers:
            t.join()
    assert client.get("/logs").json["logs"][0]["message"] == "stored while reads are stuck"


def open_transactions(db) -> list[tuple]:
    """Read sessions of this database inside a transaction over 0.5 s old. (A batch being
    read is briefly 'idle in transaction' between fetches, on a slow machine for tens of
    milliseconds; a transaction held while the server waits on the client grows older.)"""
    found = db.execute(
        text(
            "SELECT pid, state, now() - xact_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = :name "
            "AND xact_start < now() - interval '0.5 s'"
        ),
        {"name": READ_APPLICATION_NAME},
    ).all()
    db.rollback()
    return found


def test_a_slow_export_client_holds_no_transaction_and_gets_every_row_once(
    settings, db, live_server
):
    insert(db, rows(12_000, pad=1000))  # ~13 MB of NDJSON: far more than socket buffers
    expected = db.execute(text("SELECT id FROM logs ORDER BY timestamp, id")).scalars().all()
    db.rollback()
    host, port = live_server.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader's window
    sock.connect((host, int(port)))
    conn = http.client.HTTPConnection(host, int(port))
    conn.sock = sock
    conn.request("GET", "/logs/export?order=asc")
    response = conn.getresponse()
    assert response.status == 200
    head = response.read(200_000)

    # The client stops reading; the server blocks on its full socket.
    seen = []
    for _ in range(12):
        time.sleep(0.15)
        seen += open_transactions(db)
    # Logs stored during the export are not part of it (it sends what was there at its start).
    insert(db, rows(5, first=100_000))
    assert seen == []

    lines = (head + response.read()).splitlines()
    conn.close()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)) == 12_000
    assert ids == expected


def test_read_settings_default_and_fail_naming_the_variable():
    s = load_settings({})
    assert (s.read_statement_timeout_ms, s.read_pool_size, s.read_pool_timeout) == (10_000, 5, 5.0)
    for env, named in (
        ({"READ_STATEMENT_TIMEOUT_MS": "soon"}, "READ_STATEMENT_TIMEOUT_MS"),
        ({"READ_STATEMENT_TIMEOUT_MS": "10"}, "READ_STATEMENT_TIMEOUT_MS"),
        ({"READ_POOL_SIZE": "0"}, "READ_POOL_SIZE"),
        ({"READ_POOL_TIMEOUT": "never"}, "READ_POOL_TIMEOUT"),
    ):
        with pytest.raises(ConfigError, match=named):
            load_settings(env)
