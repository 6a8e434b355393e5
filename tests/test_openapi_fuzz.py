"""Schemathesis against the OpenAPI description: no generated request may get a 5xx, and
every answer must match what the description promises (status, content type, body).

The description is built by flask-smorest from the routes' own declarations; it needs
no running service, so it is taken at import from an app on default settings. Each
operation's cases are sent in-process to this test's app (open mode, no keys), then over
HTTP to a running app with keys configured, once per scope: an admin key (everything is
allowed), a read key and an ingest key (the other scopes' routes must answer their
documented 403), and no key (the documented 401). Real PostgreSQL and Redis throughout.
Examples per operation are capped (fewer for the keyed runs; `make schemathesis`
runs only this file).
"""

from __future__ import annotations

import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import make_server

from app import create_app
from config import Settings
from tests.hostile.run import ADMIN, INGEST, KEY_SETTINGS, READ

MAX_EXAMPLES = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

SPEC = create_app(Settings()).test_client().get("/openapi.json").json
# The shippers' protocols speak their own wire formats; real clients test them
# (tests/receivers). Everything else is fuzzed here.
PROTOCOLS = ["heroku", "loki", "bulk", "otlp"]
schema = schemathesis.openapi.from_dict(SPEC).exclude(tag=PROTOCOLS)


def test_the_app_serves_this_description(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json == SPEC


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms(case, app):
    case.call_and_validate(app=app, checks=CHECKS)


@pytest.fixture
def keyed_url(settings):
    """A running app with a key of every scope (rate limits out of the way): its URL."""
    keyed = settings.with_overrides(
        **KEY_SETTINGS, ingest_rate_limit="1000000/second", read_rate_limit="1000000/second"
    )
    server = make_server("127.0.0.1", 0, create_app(keyed), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _as(scope: str, key: str | None, examples: int):
    """The conformance run sending `key` (None: no key at all) with every request."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    @schema.parametrize()
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    def run(case, keyed_url):
        case.call_and_validate(base_url=keyed_url, headers=headers, checks=CHECKS)

    run.__name__ = run.__qualname__ = f"test_api_conforms_with_{scope}_key"
    return run


test_api_conforms_with_admin_key = _as("admin", ADMIN, 10)
test_api_conforms_with_read_key = _as("read", READ, 5)
test_api_conforms_with_ingest_key = _as("ingest", INGEST, 5)
test_api_conforms_with_no_key = _as("no", None, 3)
