"""Receiver tests: drain what a real client sent, then read back every stored field."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tasks.drain import drain_stream

COLUMNS = "timestamp, level, source, application, message, metadata, stream_id"


def stored_rows(settings, db) -> list[dict]:
    """Drain the test's stream into PostgreSQL; every row of `logs`, oldest id first."""
    drain_stream(settings, "receiver-test", budget=0.3)
    db.rollback()
    result = db.execute(text(f"SELECT {COLUMNS} FROM logs ORDER BY id"))
    return [dict(row._mapping) for row in result]


@pytest.fixture
def rows(settings, db):
    """A function returning the stored rows after draining (call it after sending)."""
    return lambda: stored_rows(settings, db)
