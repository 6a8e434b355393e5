"""The page itself, without a browser: its security headers, links and static files."""

from __future__ import annotations

import re

# What a browser sends; without text/html `GET /` is Elasticsearch's banner (app/web/bulk.py).
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_page_policy_forbids_inline_and_foreign_scripts(client):
    response = client.get("/", headers={**BROWSER, "Host": "logs.example:8000"})
    assert response.status_code == 200
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert policy["connect-src"] == "'self' ws://logs.example:8000 wss://logs.example:8000"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = response.get_data(as_text=True)
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, "an inline script"
    assert re.search(r"\son[a-z]+\s*=", html) is None, "an inline event handler"
    assert 'href="http://logs.example:5555/"' in html  # Flower, at its own port


def test_a_hostile_host_header_stays_out_of_the_policy(client):
    response = client.get("/", headers={**BROWSER, "Host": "evil.example; script-src *"})
    policy = response.headers["Content-Security-Policy"]
    assert "evil" not in policy and "script-src 'self'" in policy
    assert "evil" not in response.get_data(as_text=True)


def test_static_files_are_served(client):
    for path in ("/static/js/main.js", "/static/css/sluice.css", "/static/favicon.svg"):
        assert client.get(path).status_code == 200, path
