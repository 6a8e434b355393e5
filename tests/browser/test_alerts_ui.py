"""Saved searches and alerts in the web UI, in real Chromium against the real API."""

from __future__ import annotations

import pytest

from tasks.alerts import evaluate_due
from tests.browser.helpers import post

pytestmark = pytest.mark.browser

SEARCH_DONE = """seq => window.sluice.search.sequence > seq
    && document.querySelector('#search-list').getAttribute('aria-busy') === 'false'"""


@pytest.fixture(autouse=True)
def _empty(db):
    db.exec_driver_sql("TRUNCATE alerts, searches RESTART IDENTITY CASCADE")
    db.commit()


def test_save_a_search_list_it_and_open_it(page, server):
    post(
        server,
        [
            {"message": "card declined for order 1", "level": "ERROR", "application": "billing"},
            {"message": "card accepted for order 2", "level": "INFO", "application": "billing"},
            {"message": "card declined elsewhere", "level": "ERROR", "application": "web"},
        ],
    )
    page.goto(server + "/#search")
    page.wait_for_function(SEARCH_DONE, arg=0)
    page.fill("#search-form [name=q]", "declined")
    page.fill("#search-form [name=application]", "billing")
    page.fill("#save-name", "billing declines")
    page.click("#search-save")
    page.wait_for_selector("#save-result a")

    page.click("#save-result a")
    page.wait_for_selector("#searches-list tr")
    rows = page.locator("#searches-list tr")
    assert rows.count() == 1
    assert "billing declines" in rows.first.inner_text()
    assert "q=declined" in rows.first.inner_text()

    rows.first.get_by_text("Open").click()
    page.wait_for_url("**/?application=billing&q=declined#search")
    page.wait_for_function(
        "() => document.querySelectorAll('#search-list li').length === 1"
        " && document.querySelector('#search-list').getAttribute('aria-busy') === 'false'"
    )
    assert page.input_value("#search-form [name=q]") == "declined"
    assert "card declined for order 1" in page.inner_text("#search-list")


def test_save_a_search_on_its_page_and_delete_it(page, server):
    page.goto(server + "/ui/searches")
    page.wait_for_selector("#searches-list[aria-busy=false]", state="attached")
    assert page.is_visible("#searches-empty")
    page.fill("#search-new [name=name]", "bad one")
    page.fill("#search-new [name=filters]", "min_level=LOUD")
    page.click("#search-new button[type=submit]")
    page.wait_for_selector("#page-error:not([hidden])")
    assert "min_level" in page.inner_text("#page-error")

    page.fill("#search-new [name=filters]", "min_level=WARN&source=web-1")
    page.click("#search-new button[type=submit]")
    page.wait_for_selector("#searches-list tr")
    assert "min_level=WARN source=web-1" in page.inner_text("#searches-list")
    page.click("#searches-list tr >> text=Delete")
    page.wait_for_selector("#searches-empty:not([hidden])")
    assert page.locator("#searches-list tr").count() == 0


def test_create_alerts_list_them_and_see_one_fire(page, server, client, settings):
    client.post(
        "/searches",
        json={
            "name": "billing errors",
            "filters": {"min_level": "ERROR", "application": "billing"},
        },
    )
    page.goto(server + "/ui/alerts")
    page.wait_for_selector("#alerts-list[aria-busy=false]", state="attached")
    page.wait_for_selector("#alert-search option:has-text('billing errors')", state="attached")

    page.fill("#alert-new [name=name]", "billing burst")
    page.select_option("#alert-search", label="billing errors")
    page.fill("#alert-new [name=threshold]", "2")
    page.fill("#alert-new [name=window]", "1m")
    page.fill("#alert-new [name=webhook]", "http://127.0.0.1:9/hook")
    page.click("#alert-new button[type=submit]")
    page.wait_for_selector("#alerts-list tr")

    page.fill("#alert-new [name=name]", "any panic")
    page.fill("#alert-new [name=filters]", "q=panic")
    page.fill("#alert-new [name=threshold]", "1")
    page.fill("#alert-new [name=window]", "5m")
    page.fill("#alert-new [name=webhook]", "ftp://127.0.0.1/hook")
    page.click("#alert-new button[type=submit]")
    page.wait_for_selector("#page-error:not([hidden])")
    assert "webhook" in page.inner_text("#page-error")
    page.fill("#alert-new [name=webhook]", "http://127.0.0.1:9/other")
    page.click("#alert-new button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('#alerts-list tr').length === 2")

    rows = page.locator("#alerts-list tr")
    assert "any panic" in rows.nth(0).inner_text() and "q=panic" in rows.nth(0).inner_text()
    burst = rows.nth(1)
    assert "billing burst" in burst.inner_text() and "≥ 2 in 1m" in burst.inner_text()
    assert burst.locator(".state").inner_text() == "ok"

    post(
        server,
        [
            {"message": f"charge failed {i}", "level": "ERROR", "application": "billing"}
            for i in range(2)
        ],
    )
    evaluate_due(settings)
    page.reload()
    page.wait_for_selector("#alerts-list[aria-busy=false] tr")
    burst = page.locator("#alerts-list tr", has_text="billing burst")
    assert burst.locator(".state").inner_text() == "firing"
    assert burst.locator(".count").inner_text() == "2"
    burst.get_by_text("History").click()
    page.wait_for_selector("#history-list li[data-kind=firing]")
    assert "firing, 2 matching" in page.inner_text("#history-list")
