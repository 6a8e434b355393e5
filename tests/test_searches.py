"""Saved searches over HTTP against real PostgreSQL: the filter set is the one of GET /logs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.pipeline import searches as saved
from app.pipeline.filters import LiveFilterSchema


@pytest.fixture(autouse=True)
def _empty(db):
    db.exec_driver_sql("TRUNCATE alerts, searches RESTART IDENTITY CASCADE")
    db.commit()


def create(client, **body):
    response = client.post("/searches", json=body)
    assert response.status_code == 201, response.json
    return response.json


def test_create_list_get_update_delete(client):
    made = create(
        client,
        name="billing errors",
        filters={"min_level": "ERROR", "application": ["billing"], "meta.user_id": "789"},
    )
    assert made["filters"] == {
        "application": ["billing"],
        "meta.user_id": ["789"],
        "min_level": ["ERROR"],
    }
    assert made["query"] == "application=billing&meta.user_id=789&min_level=ERROR"
    assert made["link"] == "/?application=billing&meta.user_id=789&min_level=ERROR#search"
    create(client, name="all payments", filters="q=payment&source=web-1&source=web-2")

    listed = client.get("/searches").json["searches"]
    assert [s["name"] for s in listed] == ["all payments", "billing errors"]
    assert listed[0]["filters"] == {"q": ["payment"], "source": ["web-1", "web-2"]}

    assert client.get(f"/searches/{made['id']}").json == made
    changed = client.put(f"/searches/{made['id']}", json={"name": "billing"}).json
    assert changed["name"] == "billing" and changed["filters"] == made["filters"]
    changed = client.put(f"/searches/{made['id']}", json={"filters": {"level": "WARN,ERROR"}})
    assert changed.json["filters"] == {"level": ["WARN,ERROR"]}

    assert client.delete(f"/searches/{made['id']}").status_code == 204
    assert client.get(f"/searches/{made['id']}").status_code == 404
    assert [s["name"] for s in client.get("/searches").json["searches"]] == ["all payments"]


def test_the_saved_filter_finds_what_get_logs_finds(client):
    client.post(
        "/data/",
        json=[
            {"message": "card declined", "level": "ERROR", "application": "billing"},
            {"message": "card declined", "level": "INFO", "application": "billing"},
            {"message": "other", "level": "ERROR", "application": "web"},
        ],
    )
    made = create(client, name="x", filters={"min_level": "WARN", "application": "billing"})
    found = client.get("/logs?" + made["query"]).json["logs"]
    assert [(log["level"], log["application"]) for log in found] == [("ERROR", "billing")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filters": {}}, "name"),
        ({"name": "  ", "filters": {}}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "x", "filters": {"min_level": "LOUD"}}, "filters"),
        ({"name": "x", "filters": {"since": "1h"}}, "filters"),
        ({"name": "x", "filters": {"nope": "1"}}, "filters"),
        ({"name": "x", "filters": {"level": "ERROR", "min_level": "WARN"}}, "filters"),
        ({"name": "x", "filters": {"q": ["a", "b"]}}, "filters"),
        ({"name": "x", "filters": {"meta.": "1"}}, "filters"),
        ({"name": "x", "filters": [1, 2]}, "filters"),
        ({"name": "x", "filters": {"q": 5}}, "filters"),
    ],
)
def test_a_bad_search_is_a_400_naming_the_field(client, body, field):
    response = client.post("/searches", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "validation_error"
    assert field in response.json["fields"]
    assert client.get("/searches").json["searches"] == []


def test_unknown_ids_are_404(client):
    for method in ("get", "put", "delete"):
        response = getattr(client, method)("/searches/99", json={"name": "x"})
        assert response.status_code == 404
        assert response.json["error"] == "not_found"
    assert client.get(f"/searches/{2**64}").status_code == 404


def test_a_search_an_alert_uses_cannot_be_deleted(client):
    made = create(client, name="x", filters={"q": "boom"})
    alert = client.post(
        "/alerts",
        json={
            "name": "a",
            "search": made["id"],
            "threshold": 1,
            "window": "1m",
            "webhook": "http://127.0.0.1:9/",
        },
    )
    assert alert.status_code == 201, alert.json
    response = client.delete(f"/searches/{made['id']}")
    assert response.status_code == 409
    assert response.json["alerts"] == [alert.json["id"]]
    assert client.delete(f"/alerts/{alert.json['id']}").status_code == 204
    assert client.delete(f"/searches/{made['id']}").status_code == 204


NAMES = st.sampled_from(["q", "contains", "source", "application", "min_level", "meta.k"])


@given(st.dictionaries(NAMES, st.lists(st.text(max_size=5), max_size=3), max_size=4))
def test_normalize_keeps_every_non_empty_value_in_order(raw):
    out = saved.normalize(raw)
    assert list(out) == sorted(out)
    for name, values in raw.items():
        assert out.get(name, []) == [v for v in values if v != ""]


@given(st.dictionaries(NAMES, st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=2)))
def test_query_string_round_trips(raw):
    filter_set = saved.normalize(raw)
    assert saved.normalize(saved.query_string(filter_set)) == filter_set


@given(st.dictionaries(NAMES, st.lists(st.text(max_size=5), max_size=3), max_size=4))
def test_checked_agrees_with_the_query_filter(raw):
    """A filter set is valid as a saved search exactly when GET /logs' schema accepts it."""
    filter_set = saved.normalize(raw)
    try:
        expected = LiveFilterSchema().load(dict(filter_set))
    except ValidationError:
        expected = None
    try:
        assert saved.to_filters(saved.checked(raw)) == expected
    except ValidationError:
        assert expected is None
