"""The live tail in a real browser: latency, filters, pause, scrolling, reconnect."""

from __future__ import annotations

import time

import pytest

from tests.browser.helpers import post, row, wait_filters_confirmed

pytestmark = pytest.mark.browser


def test_posted_log_appears_within_a_second(live_page, server):
    started = time.monotonic()
    [log_id] = post(server, [{"message": "checkout done", "level": "WARN", "source": "shop"}])
    row(live_page, log_id).wait_for()
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"{elapsed:.3f}s from POST to the row on screen"
    shown = row(live_page, log_id)
    assert "checkout done" in shown.inner_text()
    assert "lv-WARN" in shown.get_attribute("class")


def test_min_level_filter_hides_other_logs(live_page, server):
    [before] = post(server, [{"message": "routine before", "level": "INFO"}])
    row(live_page, before).wait_for()

    live_page.select_option("#live-filters select[name=min_level]", "ERROR")
    wait_filters_confirmed(live_page)
    # Rows already shown that the new filters exclude are removed...
    row(live_page, before).wait_for(state="detached")
    assert not live_page.is_checked("#live-filters input[value=INFO]")
    # ...and the server sends only what passes.
    info, error = post(
        server, [{"message": "routine", "level": "INFO"}, {"message": "broken", "level": "ERROR"}]
    )
    row(live_page, error).wait_for()
    assert row(live_page, info).count() == 0
    assert live_page.locator("#live-list li").count() == 1


def test_text_and_source_filters_are_sent_to_the_server(live_page, server):
    live_page.fill("#live-filters input[name=contains]", "needle")
    live_page.fill("#live-filters input[name=source]", "db")
    live_page.wait_for_function("() => window.sluice.live.filters.source === 'db'")
    wait_filters_confirmed(live_page)
    ids = post(
        server,
        [
            {"message": "hay", "source": "db"},
            {"message": "a NEEDLE elsewhere", "source": "web"},
            {"message": "the needle", "source": "db"},
        ],
    )
    row(live_page, ids[2]).wait_for()
    assert live_page.locator("#live-list li").count() == 1


def test_pause_counts_arrivals_and_resume_shows_them(live_page, server):
    live_page.click("#live-pause")
    assert live_page.get_attribute("#live-pause", "aria-pressed") == "true"
    ids = post(server, [{"message": f"while paused {i}"} for i in range(3)])
    live_page.wait_for_function(
        "() => document.querySelector('#live-paused-text').textContent.includes('3 new logs')"
    )
    assert live_page.is_visible("#live-paused")
    assert "3 new" in live_page.inner_text("#live-pause")
    assert live_page.locator("#live-list li").count() == 0

    live_page.click("#live-pause")
    for log_id in ids:
        row(live_page, log_id).wait_for()
    assert live_page.is_hidden("#live-paused")
    assert live_page.inner_text("#live-pause") == "Pause"


def test_scrolling_up_stops_following_and_bottom_resumes(live_page, server):
    post(server, [{"message": f"line {i}"} for i in range(120)])
    live_page.wait_for_function("() => document.querySelectorAll('#live-list li').length === 120")
    at_bottom = "() => { const s = document.querySelector('#live-scroller');"
    at_bottom += " return s.scrollHeight - s.scrollTop - s.clientHeight < 2; }"
    live_page.wait_for_function(at_bottom)

    live_page.locator("#live-scroller").evaluate("s => s.scrollTo(0, 0)")
    live_page.wait_for_function("() => !window.sluice.live.stick")
    [newest] = post(server, [{"message": "arrived while reading"}] * 5)[-1:]
    row(live_page, newest).wait_for()
    assert live_page.locator("#live-scroller").evaluate("s => s.scrollTop") == 0
    assert live_page.inner_text("#live-jump") == "↓ 5 new below"

    live_page.click("#live-jump")
    live_page.wait_for_function(at_bottom)
    assert live_page.is_hidden("#live-jump")
    [last] = post(server, [{"message": "followed again"}])
    row(live_page, last).wait_for()
    live_page.wait_for_function(at_bottom)


def test_rows_in_the_page_are_capped(live_page, server):
    post(server, [{"message": f"flood {i}"} for i in range(2100)])
    live_page.wait_for_function("() => window.sluice.live.received === 2100")
    live_page.wait_for_function("() => !window.sluice.live.frame")
    assert live_page.locator("#live-list li").count() == 2000
    assert live_page.locator("#live-list li").first.inner_text().endswith("flood 100")


def test_reconnect_resumes_after_the_last_log_seen(live_page, server):
    sockets: list[str] = []
    live_page.on("websocket", lambda ws: sockets.append(ws.url))
    [first] = post(server, [{"message": "before the cut"}])
    row(live_page, first).wait_for()

    live_page.evaluate("() => window.sluice.live.socket.close()")
    live_page.wait_for_selector("html[data-live=reconnecting]")
    during = post(server, [{"message": f"during the cut {i}"} for i in range(5)])
    live_page.wait_for_selector("html[data-live=live]")
    after = post(server, [{"message": "after the cut"}])
    for log_id in [*during, *after]:
        row(live_page, log_id).wait_for()
    shown = live_page.locator("#live-list li").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert shown == [str(i) for i in [first, *during, *after]]
    assert sockets and f"after={first}" in sockets[-1]


def test_dropped_notice_is_shown(live_page):
    message = '{"type": "dropped", "count": 7}'
    live_page.evaluate("m => window.sluice.live.onMessage(m)", message)
    assert "skipped 7 logs" in live_page.inner_text("#live-dropped")
    live_page.click("#live-dropped-dismiss")
    assert live_page.is_hidden("#live-dropped")
    assert "7 skipped" in live_page.inner_text("#live-status")
