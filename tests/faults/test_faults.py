"""Faults during a load: what clients were told (202) against what PostgreSQL holds.

Each scenario runs the Procfile's processes under a paced load of FAULTS_LOGS logs, each
with a unique id; clients retry what was not acknowledged. Afterwards it counts
acknowledged, stored (distinct ids), duplicates (rows beyond the first per id), dead
letters and lost (acknowledged, not stored), adds a row to the closing table, and asserts
lost = 0 and duplicates = 0 - except for Redis without AOF, where the loss is measured.
"""

from __future__ import annotations

import signal
import time

import redis
import requests

from tests.faults.conftest import BEAT_PAUSE, LOGS, OUTAGE, RATE
from tests.faults.faults import (
    cut_request_mid_body,
    kill_drain_mid_chunk,
    kill_web_worker,
    queue_state,
    wait_queue_idle,
)
from tests.faults.load import Load, Result, result, settle, tally

SETTLE = 60 + LOGS / 500  # seconds for the backlog to drain after the fault


def finish(stack, settings, load: Load, scenario: str, notes: list[str]) -> Result:
    """Let the load end and the drain catch up; the scenario's row."""
    load.join()
    t = settle(settings, load.acked, SETTLE)
    try:
        state = wait_queue_idle(stack, timeout=30)
    except AssertionError:
        state = queue_state(stack)
    if (state["lag"], state["pending_messages"]) != (0, 0):
        notes.append(f"queue not idle: lag {state['lag']}, pending {state['pending_messages']}")
    return result(scenario, load, t, notes)


def assert_exact(row: Result) -> None:
    assert (row.lost, row.duplicates, row.dead_letters) == (0, 0, 0), row
    assert row.acknowledged == LOGS, row
    assert "queue not idle" not in row.notes, row


def test_celery_worker_killed_mid_chunk(fault_settings, make_stack, report):
    settings = fault_settings
    stack = make_stack(settings).start("web", "worker", "beat")
    r = redis.Redis.from_url(settings.redis_url)
    load = Load(stack.url, LOGS, RATE).start()
    load.wait_fraction(0.25)
    child = kill_drain_mid_chunk(stack, r, settings, group=False)
    load.wait_fraction(0.6)
    whole = kill_drain_mid_chunk(stack, r, settings, group=True)
    time.sleep(1)
    stack.start("worker")
    row = finish(
        stack,
        settings,
        load,
        "a. Celery worker kill -9 mid-chunk",
        [f"pool child killed holding {child} entries", f"whole worker killed holding {whole}"],
    )
    report(row)
    assert_exact(row)


def test_gunicorn_worker_killed_mid_request(fault_settings, make_stack, report):
    settings = fault_settings
    stack = make_stack(settings).start("web", "worker", "beat")
    load = Load(stack.url, LOGS, RATE).start()
    kills = 0
    for at in (0.2, 0.45, 0.7):
        load.wait_fraction(at)
        kills += kill_web_worker(stack, serving_for=0)
        if at == 0.45:
            # One cut that lands for certain: a worker killed while it reads a request.
            cut = cut_request_mid_body(stack)
    # More cuts, more chances for one to land between a request's append and its answer.
    # A request is in flight only part of the time: kill when one is (a kill between
    # requests cuts nothing, and at 5,000 logs blind kills can miss every one).
    while load.errors() < 8 and not load.done() and kills < 30:
        time.sleep(0.2)
        if load.wait_in_flight():
            kills += kill_web_worker(stack, serving_for=0.5)
    notes = [f"{kills + 1} kills", f"a request cut mid-body saw {cut}"]
    row = finish(stack, settings, load, "b. gunicorn worker kill -9", notes)
    report(row)
    assert cut in ("ConnectionResetError", "BrokenPipeError", "RemoteDisconnected"), cut
    assert_exact(row)


def outage_notes(load: Load, acked_before: int, errors_before: int) -> list[str]:
    return [
        f"down {OUTAGE:g} s",
        f"{len(load.acked) - acked_before:,} acknowledged meanwhile",
        f"{load.errors() - errors_before:,} refused meanwhile",
    ]


def test_postgres_restart(fault_settings, make_stack, private_pg, report):
    settings = fault_settings.with_overrides(
        database_url=private_pg.sluice_database(fault_settings)
    )
    stack = make_stack(settings).start("web", "worker", "beat")
    load = Load(stack.url, LOGS, RATE).start()
    load.wait_fraction(0.3)
    private_pg.stop()
    acked_before, errors_before = len(load.acked), load.errors()
    health = stack.wait_http("/health", accept=(503,), timeout=10).json()
    time.sleep(OUTAGE)
    notes = outage_notes(load, acked_before, errors_before)
    refused_while_down = load.errors() - errors_before
    private_pg.start()
    row = finish(stack, settings, load, "c. PostgreSQL restart", notes)
    report(row)
    assert health["database"].startswith("down"), health
    assert refused_while_down == 0, "ingest needs only Redis: it answers 202 while PG is down"
    assert stack.wait_http("/health").status_code == 200
    assert_exact(row)


def restart_redis(
    stack, load: Load, server, resume_worker: bool = False
) -> tuple[dict, list[str], set[str]]:
    """Kill the private Redis (SIGKILL), keep it down OUTAGE s, start it again; what
    /health said meanwhile, notes, and the ids the old Redis acknowledged.

    Those ids are taken while Redis is still down: once it is back, the clients' retries
    are acknowledged by the new one within milliseconds, before this function returns."""
    state = queue_state(stack)
    at_risk = state["lag"] + state["pending_messages"]
    server.kill()
    acked_before, errors_before = len(load.acked), load.errors()
    if resume_worker:
        stack.signal("worker", signal.SIGCONT)
    health = stack.wait_http("/health", accept=(503,), timeout=10).json()
    time.sleep(OUTAGE)
    notes = [
        f"{at_risk:,} queued or pending at the kill",
        *outage_notes(load, acked_before, errors_before),
    ]
    acked_by_old_redis = set(load.acked)
    server.start()
    return health, notes, acked_by_old_redis


def test_redis_restart_with_aof(fault_settings, make_stack, private_redis, report):
    server = private_redis(aof=True)
    settings = fault_settings.with_overrides(redis_url=server.url)
    stack = make_stack(settings).start("web", "worker", "beat")
    load = Load(stack.url, LOGS, RATE).start()
    # Freeze the worker for a while, so that the AOF has a backlog to bring back; it
    # resumes, its broker connection gone, while Redis is down.
    load.wait_fraction(0.2)
    stack.signal("worker", signal.SIGSTOP)
    load.wait_fraction(0.3)
    health, notes, _ = restart_redis(stack, load, server, resume_worker=True)
    notes.insert(0, "worker frozen (SIGSTOP) from 20 % to the kill")
    row = finish(stack, settings, load, "d. Redis kill -9 + restart, AOF everysec", notes)
    report(row)
    assert health["redis"].startswith("down"), health
    assert_exact(row)


def test_beat_stopped(fault_settings, make_stack, report):
    settings = fault_settings
    stack = make_stack(settings).start("web", "worker", "beat")
    load = Load(stack.url, LOGS, RATE).start()
    load.wait_fraction(0.1)
    stack.stop("beat")
    time.sleep(BEAT_PAUSE)
    acked = set(load.acked)
    stored = tally(settings.database_url, settings.redis_url, settings.dead_letter_stream).stored
    stack.start("beat")
    drained = len(acked & stored)
    notes = [
        f"beat down {BEAT_PAUSE:g} s",
        f"{drained:,} of {len(acked):,} acknowledged were stored before it returned",
    ]
    row = finish(stack, settings, load, "e. beat stopped", notes)
    report(row)
    assert_exact(row)


class HealthSaidNothing(AssertionError):
    """/health did not warn that Redis keeps nothing on disk."""


def persistence(health: dict):
    """The Redis persistence /health reports (`{"aof": ..., "rdb": ...}`)."""
    return health.get("persistence")


def test_redis_restart_without_aof_loss_is_measured(
    fault_settings, make_stack, private_redis, report
):
    server = private_redis(aof=False)
    settings = fault_settings.with_overrides(redis_url=server.url)
    stack = make_stack(settings).start("web", "worker", "beat")
    before = requests.get(f"{stack.url}/health", timeout=10).json()
    load = Load(stack.url, LOGS, RATE).start()
    # The drain usually keeps up, leaving next to nothing to lose: stop it for a while so
    # that the restart finds a backlog, as it would behind a slow database.
    load.wait_fraction(0.2)
    stack.stop("worker")
    load.wait_fraction(0.4)
    stored_at_kill = tally(settings.database_url, server.url, settings.dead_letter_stream).stored
    _, notes, acked_by_old_redis = restart_redis(stack, load, server)
    stack.start("worker")
    load.join()
    late = load.acked - acked_by_old_redis  # acknowledged by the new, empty Redis
    settle(settings, late, SETTLE)
    wait_queue_idle(stack, timeout=60)
    t = tally(settings.database_url, settings.redis_url, settings.dead_letter_stream)
    notes.insert(0, "worker stopped from 20 % to the restart")
    notes.append(
        f"/health before: status {before.get('status')!r}, persistence {persistence(before)!r}"
    )
    row = result("f. Redis kill -9 + restart, no AOF (loss measured)", load, t, notes)
    report(row)
    # Lost: exactly what was acknowledged and not yet drained when Redis went.
    assert load.acked - t.stored == acked_by_old_redis - stored_at_kill
    assert row.lost > 0, "the backlog should have been lost with Redis"
    if before.get("status") != "degraded" or persistence(before) is None:
        raise HealthSaidNothing(f"/health before the restart: {before}")
