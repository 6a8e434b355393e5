"""Search and the volume histogram in a real browser (they need the query API)."""

from __future__ import annotations

import json

import pytest

from tests.browser.helpers import post, routes

pytestmark = pytest.mark.browser
needs_logs = pytest.mark.skipif("/logs" not in routes(), reason="needs the query API (GET /logs)")
needs_stats = pytest.mark.skipif(
    "/logs/stats" not in routes(), reason="needs the query API (GET /logs/stats)"
)


SEARCH_DONE = """seq => window.sluice.search.sequence > seq
    && document.querySelector('#search-list').getAttribute('aria-busy') === 'false'"""


def _search(page, server, wait: bool = True, **fields) -> None:
    """Open the Search tab (which searches everything), then search with `fields`."""
    page.goto(server + "/")
    page.click("#tab-search")
    page.wait_for_function(SEARCH_DONE, arg=0)
    for name, value in fields.items():
        page.fill(f"#search-form [name={name}]", value)
    before = page.evaluate("() => window.sluice.search.sequence")
    page.click("#search-form button[type=submit]")
    if wait:
        page.wait_for_function(SEARCH_DONE, arg=before)


@needs_logs
def test_search_finds_a_log_by_text_and_shows_its_detail(page, server):
    post(
        server,
        [
            {
                "message": "payment declined for order 42",
                "level": "ERROR",
                "metadata": {"order": 42},
            },
            {"message": "payment accepted for order 43", "level": "INFO"},
            {"message": "unrelated noise", "level": "INFO"},
        ],
    )
    _search(page, server, q='"payment declined"')
    results = page.locator("#search-list li")
    assert results.count() == 1
    assert "payment declined for order 42" in results.first.inner_text()

    results.first.click()
    assert page.is_visible("#detail")
    assert json.loads(page.inner_text("#detail-meta")) == {"order": 42}
    assert "ERROR" in page.inner_text("#detail-fields")


@needs_logs
def test_search_pages_with_load_more(page, server):
    post(server, [{"message": f"paged entry {i}", "source": "pager"} for i in range(130)])
    post(server, [{"message": "paged but elsewhere", "source": "other"}])
    _search(page, server, source="pager")
    page.wait_for_function("() => document.querySelectorAll('#search-list li').length === 100")
    assert "more match" in page.inner_text("#search-summary")
    page.click("#search-more")
    page.wait_for_function("() => document.querySelectorAll('#search-list li').length === 130")
    assert page.is_hidden("#search-more")
    ids = page.locator("#search-list li").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert len(set(ids)) == 130


@needs_logs
def test_search_reports_a_bad_filter(page, server):
    _search(page, server, wait=False, meta="not-a-pair")
    assert "key=value" in page.inner_text("#search-error")


@needs_stats
def test_histogram_draws_stacked_bars_by_level(page, server):
    post(
        server,
        [{"message": "ok", "level": "INFO"}] * 30 + [{"message": "bad", "level": "ERROR"}] * 5,
    )
    page.goto(server + "/")
    page.wait_for_selector("#histogram svg rect.bar")
    assert page.locator("#histogram rect.bar.lv-INFO").count() >= 1
    assert page.locator("#histogram rect.bar.lv-ERROR").count() >= 1
    assert page.inner_text("[data-level-count=ERROR]") == "5"
    assert page.inner_text("[data-level-count=INFO]") == "30"
    assert "35 logs" in page.inner_text("#volume-summary")

    page.check("#range input[value='15m']")
    page.wait_for_selector("#histogram[aria-busy=false] svg")
    # Clicking a bar narrows the range to that bucket and searches it.
    page.locator("#histogram g.pickable").last.click()
    page.wait_for_selector("#view-search:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#search-list li').length === 35")
    assert page.is_checked("#range input[value=custom]")
