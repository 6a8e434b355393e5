"""The system page in real Chromium: lag, drain rate and the newest dead letter with its
reason, updating by itself while logs flow through the real queue and drain."""

from __future__ import annotations

import threading

import orjson
import pytest
import requests

from app.pipeline import stream
from app.pipeline.connections import redis_client
from tasks.drain import drain_stream


def fast(server: str, logs: list) -> None:
    answer = requests.post(
        f"{server}/data/fast",
        data=orjson.dumps(logs),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


@pytest.fixture
def drain(settings):
    """The real drain, running in a thread until the test ends (as a worker would)."""
    stop = threading.Event()

    def run():
        while not stop.is_set():
            drain_stream(settings, "browser-drain", budget=0.3, should_stop=stop.is_set)

    thread = threading.Thread(target=run, daemon=True)
    yield thread.start
    stop.set()
    if thread.is_alive():
        thread.join(5)


def refreshes(page) -> int:
    return int(page.evaluate("() => document.documentElement.dataset.refreshes || 0"))


def test_shows_lag_then_rate_and_newest_dead_letter_while_logs_flow(page, server, settings, drain):
    r = redis_client(settings.redis_url)
    stream.ensure_group(r, settings)
    fast(server, [{"message": f"waiting {i}"} for i in range(25)])

    page.goto(server + "/system")
    page.wait_for_function("() => Number(document.documentElement.dataset.refreshes) >= 1")
    assert page.text_content("#queue-lag") == "25"  # nothing drains yet
    assert page.text_content("#rate-now") == "0"
    assert page.is_visible("#dead-empty")

    drain()
    page.wait_for_function("() => document.getElementById('queue-lag').textContent === '0'")
    page.wait_for_function("() => document.getElementById('rate-now').textContent === '25'")
    seen = refreshes(page)
    for i in range(5):  # logs keep flowing; the page follows without a reload
        fast(server, [{"message": f"flowing {i}-{j}"} for j in range(10)])
        page.wait_for_function(f"() => Number(document.documentElement.dataset.refreshes) > {seen}")
        seen = refreshes(page)
    page.wait_for_function("() => document.getElementById('rate-now').textContent === '75'")
    stored = page.get_attribute("#rate-chart svg polyline[data-series=drain_stored]", "points")
    assert any(float(p.split(",")[1]) < 100 for p in stored.split())  # a rise above the floor

    r.xadd(settings.stream_name, {"d": b"{older poison"})
    r.xadd(settings.stream_name, {"r": b"newest \x00 poison", "f": b""})
    page.wait_for_function("() => document.querySelectorAll('#dead-list li').length === 2")
    newest = page.locator("#dead-list li").first
    assert "NUL" in newest.locator(".dead-reason").text_content()
    assert newest.locator(".dead-body").text_content() == "newest \x00 poison"
    assert page.text_content("#dead-total") == "2"
    assert not page.is_visible("#dead-empty")
    assert page.locator("#partitions tbody tr").count() >= 1
    assert page.locator("#workers tr[data-consumer=browser-drain]").count() == 1


def test_the_main_pages_header_links_to_the_system_page(page, server):
    page.goto(server + "/")
    page.click("#system-link")
    page.wait_for_url(server + "/system")
    page.wait_for_function("() => Number(document.documentElement.dataset.refreshes) >= 1")
    assert page.locator("#system-link[aria-current=page]").count() == 1
