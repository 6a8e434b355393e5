"""Schemathesis against the OpenAPI description: no generated request may get a 5xx, and
every answer must match what the description promises (status, content type, body).

The description is static (built from the schemas, not from a running app), so it is
loaded at import; each operation's cases are sent in-process to this test's app, with
real PostgreSQL and Redis. Examples per operation are capped so the file stays well under
a minute (`make schemathesis` runs only this file).
"""

from __future__ import annotations

import orjson
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.web.openapi import build_spec

MAX_EXAMPLES = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(orjson.loads(build_spec()))


def test_the_app_serves_this_description(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json == orjson.loads(build_spec())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms(case, app):
    case.call_and_validate(app=app, checks=CHECKS)
