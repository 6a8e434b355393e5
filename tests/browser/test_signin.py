"""With keys configured: the UI signs in with a read key and tails; another origin cannot."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from app import create_app
from tests.browser.helpers import row

pytestmark = pytest.mark.browser

READ, INGEST = "read-key-" + "r" * 16, "ingest-key-" + "i" * 16


@pytest.fixture
def app(settings):
    return create_app(settings.with_overrides(read_keys=READ, ingest_keys=INGEST))


def _post(server, message: str) -> int:
    answer = requests.post(
        f"{server}/data/", json={"message": message}, headers={"X-API-Key": INGEST}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["ids"][0]


def _sign_in(page, server, key: str) -> None:
    page.goto(server + "/")
    page.wait_for_url("**/signin?next=/")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")


def test_sign_in_with_a_read_key_then_tail_and_sign_out(page, server):
    _sign_in(page, server, READ)
    page.wait_for_selector("html[data-live=live]")
    cookie = next(c for c in page.context.cookies() if c["name"] == "sluice_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts
    log_id = _post(server, "seen after sign-in")
    row(page, log_id).wait_for()
    page.click("#signout")
    page.wait_for_url("**/signin")
    page.goto(server + "/")
    page.wait_for_url("**/signin?next=/")


def test_an_ingest_key_cannot_sign_in(page, server):
    _sign_in(page, server, INGEST)
    assert page.locator("#signin-error").inner_text() == "That key cannot read logs."
    assert not [c for c in page.context.cookies() if c["name"] == "sluice_session"]


class _OtherSite(BaseHTTPRequestHandler):
    """A page on another origin (another port: same site, different origin)."""

    target = ""

    def do_GET(self):
        body = (
            "<!doctype html><title>other</title><script>"
            f"const ws = new WebSocket('{self.target}');"
            "ws.onmessage = (e) => { document.title = 'got ' + e.data.slice(0, 40); };"
            "ws.onerror = () => { document.title = 'refused'; };"
            "</script>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_page_on_another_origin_cannot_open_the_socket(page, server):
    _sign_in(page, server, READ)
    page.wait_for_selector("html[data-live=live]")  # this browser holds a session cookie
    _OtherSite.target = server.replace("http://", "ws://") + "/ws/logs"
    other = ThreadingHTTPServer(("127.0.0.1", 0), _OtherSite)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{other.server_port}/")
        page.wait_for_function("document.title !== 'other'")
        assert page.title() == "refused"
        # The browser's own report is the proof the server refused the upgrade itself.
        refusals = [e for e in page.errors if "Unexpected response code: 403" in e]
        assert len(refusals) == 1, page.errors
        page.errors.remove(refusals[0])
    finally:
        other.shutdown()
