"""Log content is untrusted: it is shown as text everywhere and can run nothing."""

from __future__ import annotations

import pytest

from tests.browser.helpers import post, routes, row

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>window.__pwned=1</script>"
HOSTILE = {
    "message": f"look {IMG} and {SCRIPT}",
    "level": "ERROR",
    "source": IMG,
    "application": SCRIPT,
    "metadata": {"html": IMG, SCRIPT: "key too"},
}


def _assert_nothing_ran(page, dialogs) -> None:
    page.wait_for_timeout(300)  # give an onerror handler time to fire, if one existed
    assert dialogs == []
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("main img, main script, dialog img, dialog script").count() == 0


def test_markup_in_a_live_log_is_literal_text(live_page, server):
    dialogs: list[str] = []
    live_page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    [log_id] = post(server, [HOSTILE])
    shown = row(live_page, log_id)
    shown.wait_for()
    assert shown.locator(".message").inner_text() == HOSTILE["message"]
    assert IMG in shown.locator(".origin").inner_text()

    shown.focus()
    live_page.keyboard.press("Enter")  # the detail opens from the keyboard too
    assert live_page.is_visible("#detail")
    meta = live_page.inner_text("#detail-meta")
    assert IMG in meta and "window.__pwned=1" in meta
    assert live_page.inner_text("#detail-message") == HOSTILE["message"]
    _assert_nothing_ran(live_page, dialogs)
    live_page.keyboard.press("Escape")
    assert live_page.is_hidden("#detail")


@pytest.mark.skipif("/logs" not in routes(), reason="needs the query API (GET /logs)")
def test_markup_in_a_search_result_is_literal_text(page, server):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    post(server, [HOSTILE])
    page.goto(server + "/#search")
    result = page.locator("#search-list li").first
    result.wait_for()
    assert result.locator(".message").inner_text() == HOSTILE["message"]
    result.click()
    assert IMG in page.inner_text("#detail-meta")
    _assert_nothing_ran(page, dialogs)
