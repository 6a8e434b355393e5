"""Fixtures for driving the web UI in Debian's headless Chromium with Playwright.

The app is served by a real (threaded werkzeug) server on a free port, as in
tests/test_live.py, so the page talks to the real `/ws/logs`, PostgreSQL and Redis.
Playwright never downloads a browser here: it launches /usr/bin/chromium (the Makefile's
`browser` target installs it), and every browser test is skipped, saying why, without it.
"""

from __future__ import annotations

import os
import re

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NO_CHROMIUM = f"{CHROMIUM} is missing: install Debian's chromium (`make browser`)"


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def server(live_server):
    """The app's base URL on a real HTTP server."""
    return f"http://{live_server}"


# An HTTP error status is the app's answer, which the page handles and shows. The werkzeug
# development server writes an HTTP response after a WebSocket closes (flask-sock's
# werkzeug mode; gunicorn does not), which Chromium reports as an invalid frame. Any
# other console error (a CSP violation, a script error) is a bug.
EXPECTED_CONSOLE_ERRORS = re.compile(r"^Failed to load resource|Invalid frame header$")


def _console_error(message) -> bool:
    return message.type == "error" and not EXPECTED_CONSOLE_ERRORS.search(message.text)


@pytest.fixture
def page(browser):
    """A fresh page (own context); fails the test if the page's JS threw."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    context.set_default_timeout(10_000)
    new = context.new_page()
    errors: list[str] = []
    new.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    new.on("console", lambda m: _console_error(m) and errors.append(f"console: {m.text}"))
    new.errors = errors
    yield new
    context.close()
    assert not errors, errors


@pytest.fixture
def live_page(page, server):
    """The UI open on the live tail, connected (the server has confirmed its filters)."""
    page.goto(server + "/")
    page.wait_for_selector("html[data-live=live]")
    return page
