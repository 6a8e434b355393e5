"""Schemathesis against the OpenAPI description: no generated request may get a 5xx, and
every answer must match what the description promises (status, content type, body).

The description is built by flask-smorest from the routes' own declarations; it needs
no running service, so it is taken at import from an app on default settings; each
operation's cases are sent in-process to this test's app, with
real PostgreSQL and Redis. Examples per operation are capped so the file stays well under
a minute (`make schemathesis` runs only this file).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from config import Settings

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
