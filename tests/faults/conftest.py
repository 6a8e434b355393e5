"""The fault suite's scale, its stacks, and the table it prints at the end.

`make faults` runs the full size (FAULTS_LOGS=50000, FAULTS_OUTAGE=20, FAULTS_BEAT_PAUSE=60);
`make test` collects the same scenarios at the defaults below, small enough for CI.
The table goes to the file named by FAULTS_REPORT, else to the terminal summary.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.load import Result, markdown_table
from tests.stack import PrivatePostgres, PrivateRedis, Stack

LOGS = int(os.environ.get("FAULTS_LOGS", "5000"))
OUTAGE = float(os.environ.get("FAULTS_OUTAGE", "3"))  # seconds PostgreSQL / Redis stay down
BEAT_PAUSE = float(os.environ.get("FAULTS_BEAT_PAUSE", "5"))
# The load is paced to last about 5-20 s, so each fault lands while logs are arriving.
RATE = min(max(LOGS / 5, 1000.0), 2500.0)

RESULTS: list[Result] = []


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.timeout(max(300, int(LOGS / 100 + BEAT_PAUSE + 240))))


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    title = (
        f"Fault suite: {LOGS:,} logs per scenario, outages {OUTAGE:g} s, "
        f"beat paused {BEAT_PAUSE:g} s\n\n"
    )
    table = title + markdown_table(RESULTS)
    path = os.environ.get("FAULTS_REPORT")
    if path:
        Path(path).write_text(table)
        terminalreporter.write_line(f"fault table written to {path}")
    else:
        terminalreporter.write_sep("=", "fault suite")
        terminalreporter.write(table)


@pytest.fixture
def report():
    """Add a scenario's row to the closing table (before its assertions run)."""
    return RESULTS.append


# Timings as the system tests use them: a killed worker's entries come back after 5 s,
# not so soon that a chunk slowed by a busy machine is claimed (each claim is a delivery).
FAST = {"drain_budget": 1.0, "drain_interval": 0.5, "claim_idle_ms": 5000}


@pytest.fixture
def fault_settings(settings):
    return settings.with_overrides(**FAST)


@pytest.fixture
def make_stack(tmp_path):
    """A Stack for some settings; every one is killed at the end of the test."""
    stacks = []

    def _make(settings) -> Stack:
        stack = Stack(settings, tmp_path)
        stacks.append(stack)
        return stack

    yield _make
    for stack in stacks:  # what a scenario checks is checked by then: no warm shutdown
        stack.kill_all()


@pytest.fixture
def private_pg():
    pg = PrivatePostgres()
    pg.init()
    yield pg
    pg.destroy()


@pytest.fixture
def private_redis():
    """Start a private redis-server (`aof` on or off); destroyed at the end."""
    servers = []

    def _start(aof: bool) -> PrivateRedis:
        server = PrivateRedis(aof).start()
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.destroy()
