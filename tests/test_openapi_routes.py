"""The description and the routes are one: every route of the app is in /openapi.json
with its methods, and every documented operation is served."""

from __future__ import annotations

import re

# Flask's own static files are not part of the API.
NOT_API = {"/static/<path:filename>"}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _routes(app) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule not in NOT_API:
            methods = {m.lower() for m in rule.methods} - {"head", "options"}
            out.setdefault(_openapi_path(rule.rule), set()).update(methods)
    return out


def test_every_route_is_documented_and_every_path_served(app, client):
    spec = client.get("/openapi.json").json
    documented = {path: set(ops) - {"parameters"} for path, ops in spec["paths"].items()}
    assert documented == _routes(app)


def test_each_operation_declares_its_answers(client):
    spec = client.get("/openapi.json").json
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            codes = set(operation["responses"])
            assert any(c.startswith(("1", "2", "3")) for c in codes), (method, path, codes)
