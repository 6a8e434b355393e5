"""Sluice's own logs shipped into Sluice cannot loop: with the Procfile's processes, the
worker's WARNING-and-above lines (README "Shipping Sluice's own logs") are posted back to
the same stack while it stores logs and dead-letters one; the row count settles."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
import redis
import requests
from sqlalchemy import text

from app.pipeline.connections import engine
from tests.helpers import wait_for
from tests.stack import Stack

SHIPPED_LEVELS = (" WARNING ", " ERROR ", " CRITICAL ")


class Shipper(threading.Thread):
    """Tails the worker's output and posts each shipped line to /data/fast (as a
    shipper reading the process's stdout would)."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.path, self.url, self.offset = stack.workdir / "worker.log", stack.url, 0
        self.shipped: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            data = self.path.read_bytes()
            end = data.rfind(b"\n", self.offset) + 1
            if end <= self.offset:
                continue
            lines = data[self.offset : end].decode(errors="replace").splitlines()
            self.offset = end
            chosen = [line for line in lines if any(lv in line for lv in SHIPPED_LEVELS)]
            if chosen:
                answer = requests.post(
                    f"{self.url}/data/fast",
                    data="\n".join(chosen).encode(),
                    headers={"Content-Type": "text/plain"},
                    timeout=10,
                )
                assert answer.status_code == 202, answer.text
                self.shipped += chosen


def rows(settings) -> int:
    with engine(settings.database_url).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM logs")).scalar_one()


@pytest.fixture
def stack(settings, tmp_path):
    s = Stack(settings.with_overrides(drain_budget=1.0, drain_interval=0.5), tmp_path)
    yield s
    s.stop_all()


def test_the_workers_own_logs_shipped_back_settle(stack, settings):
    stack.start("web", "worker", "beat")
    shipper = Shipper(stack)
    shipper.offset = (stack.workdir / "worker.log").stat().st_size  # past the start-up
    shipper.start()
    try:
        logs = [{"message": f"work {i}", "source": "app"} for i in range(300)]
        for start in range(0, 300, 100):
            answer = requests.post(
                f"{stack.url}/data/fast",
                data=orjson.dumps(logs[start : start + 100]),
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            assert answer.status_code == 202
        # One entry that cannot be stored: its dead letter is a WARNING, shipped back.
        redis.Redis.from_url(settings.redis_url).xadd(settings.stream_name, {"d": b"{cut"})
        wait_for(lambda: shipper.shipped, timeout=30)
        settled = wait_for(lambda: _settled(settings, shipper, quiet=5.0), timeout=60)
    finally:
        shipper.stop.set()
        shipper.join(5)
    assert settled == 300 + len(shipper.shipped)
    assert any("dead-lettered" in line for line in shipper.shipped)
    # Storing logs wrote one INFO summary per busy drain, never one per log.
    drained = [line for line in _worker_lines(stack) if " INFO " in line and "drained" in line]
    assert 1 <= len(drained) < 30, drained

    # The system page's JSON sees the real worker, and which stream consumer is its.
    status = requests.get(f"{stack.url}/system/status", timeout=10).json()
    assert status["workers"]["available"], status["workers"]
    matched = [c for node in status["workers"]["nodes"] for c in node["consumers"]]
    assert matched and set(matched) <= {c["name"] for c in status["consumers"]}
    assert status["dead_letters"]["total"] == 1


def _settled(settings, shipper: Shipper, quiet: float) -> int | None:
    """The row count, once neither it nor the shipped lines changed for `quiet` s."""
    before, shipped = rows(settings), len(shipper.shipped)
    time.sleep(quiet)
    if rows(settings) == before and len(shipper.shipped) == shipped and before > 300:
        return before
    return None


def _worker_lines(stack: Stack) -> list[str]:
    return (stack.workdir / "worker.log").read_text(errors="replace").splitlines()
