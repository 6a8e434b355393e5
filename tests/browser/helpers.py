"""Helpers for the browser tests."""

from __future__ import annotations

import functools

from tests.helpers import post  # noqa: F401 - re-exported for the browser tests


def row(page, log_id: int):
    """The live tail's row for a log id."""
    return page.locator(f'#live-list li[data-id="{log_id}"]')


def wait_filters_confirmed(page) -> None:
    """Wait until the server has confirmed the live filters the page last sent."""
    page.wait_for_function("() => window.sluice && !window.sluice.live.awaitingAck")


@functools.cache
def routes() -> frozenset[str]:
    """The URL rules the app registers, to skip tests of an endpoint not built yet."""
    from app import create_app
    from config import Settings

    app = create_app(Settings(log_level="WARNING"))
    return frozenset(rule.rule for rule in app.url_map.iter_rules())
