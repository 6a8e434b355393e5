"""The live tail when the server caps its catch-up: the notice, its /logs link, and the
tail going on live after the gap (a real server with WS_CATCHUP_MAX=5, real Chromium)."""

from __future__ import annotations

import pytest
import requests

from tests.browser.helpers import post, row

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings):
    return settings.with_overrides(ws_catchup_max=5)


def test_a_capped_catch_up_is_shown_with_a_link_to_the_rest(live_page, server):
    [first] = post(server, [{"message": "before the cut"}])
    row(live_page, first).wait_for()

    live_page.evaluate("() => window.sluice.live.socket.close()")
    live_page.wait_for_selector("html[data-live=reconnecting]")
    during = post(server, [{"message": f"during the cut {i}"} for i in range(20)])
    live_page.wait_for_selector("#live-truncated:not([hidden])")
    assert "first 5 logs" in live_page.inner_text("#live-truncated")
    for log_id in during[:5]:
        row(live_page, log_id).wait_for()
    href = live_page.get_attribute("#live-truncated-link", "href")
    assert href.startswith("/logs?")
    rest = requests.get(server + href, timeout=10).json()["logs"]
    assert [log["id"] for log in rest] == during[5:]

    [after] = post(server, [{"message": "after the cut"}])
    row(live_page, after).wait_for()
    assert live_page.evaluate("() => window.sluice.live.lastId") == after
    live_page.click("#live-truncated-dismiss")
    assert live_page.is_hidden("#live-truncated")
