"""Access control: every route and the WebSocket x {no key, wrong scope, right scope}.

The table below says, independently of app/web/auth.py's policy, which scope each route
needs; a route the table does not list fails `test_every_route_is_in_the_matrix`, so no
new route ships without someone deciding who may call it.
"""

from __future__ import annotations

import base64
import json
import uuid

import orjson
import pytest
import requests
import websocket

from app import create_app
from tests.helpers import wait_for

INGEST, READ, ADMIN = "ingest-key-" + "i" * 16, "read-key-" + "r" * 16, "admin-key-" + "a" * 16
KEYS = {"ingest": INGEST, "read": READ, "admin": ADMIN}
MARKER = f"secret-{uuid.uuid4().hex}"  # stored before each request; must never leak

LOGPLEX = b"83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\n"
OTLP = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "otlp"}}]}]}]}
LOKI = {"streams": [{"stream": {"app": "a"}, "values": [["1764324000000000000", "loki"]]}]}
BULK = b'{"create": {}}\n{"message": "bulk"}\n'


def _json(body) -> dict:
    return {"data": orjson.dumps(body), "headers": {"Content-Type": "application/json"}}


# endpoint -> (method, path, request keyword arguments, the scope it needs, success status)
ROUTES = {
    "ingest.ingest_fast": ("POST", "/data/fast", _json({"message": "m"}), "ingest", 202),
    "ingest.ingest_sync": ("POST", "/data/", _json({"message": "m"}), "ingest", 201),
    "heroku.drain": (
        "POST",
        "/heroku/logs",
        {
            "data": LOGPLEX,
            "headers": {"Content-Type": "application/logplex-1", "Logplex-Msg-Count": "1"},
        },
        "ingest",
        204,
    ),
    "loki.push": ("POST", "/loki/api/v1/push", _json(LOKI), "ingest", 204),
    "bulk.bulk_items": (
        "POST",
        "/_bulk",
        {"data": BULK, "headers": {"Content-Type": "application/x-ndjson"}},
        "ingest",
        200,
    ),
    "bulk.bulk_items_1": (
        "POST",
        "/app-logs/_bulk",
        {"data": BULK, "headers": {"Content-Type": "application/x-ndjson"}},
        "ingest",
        200,
    ),
    "otlp.export": ("POST", "/v1/logs", _json(OTLP), "ingest", 200),
    "query.list_logs": ("GET", "/logs", {}, "read", 200),
    "query.get_log": ("GET", "/logs/{id}", {}, "read", 200),
    "query.stats": ("GET", "/logs/stats", {}, "read", 200),
    "query.export_logs": ("GET", "/logs/export", {}, "read", 200),
    "status.queue_status": ("GET", "/queue/status", {}, "read", 200),
    "metrics.metrics": ("GET", "/metrics", {}, "read", 200),
    "parse.formats": ("GET", "/parse/formats", {}, "read", 200),
    "parse.parse_auto": (
        "POST",
        "/parse/auto",
        _json({"raw_log": '{"message": "hi"}'}),
        "read",
        200,
    ),
    "api-docs.openapi_json": ("GET", "/openapi.json", {}, "read", 200),
    "ui.index": ("GET", "/", {"headers": {"Accept": "text/html"}}, "read", 200),
    # Saved searches and alerts (issue 12): reading needs read, changing needs admin. Ids
    # nobody has: a 404 shows the request got past the check.
    "searches.list_searches": ("GET", "/searches", {}, "read", 200),
    "searches.create_search": ("POST", "/searches", _json({"name": "s"}), "admin", 201),
    "searches.get_search": ("GET", "/searches/999999999", {}, "read", 404),
    "searches.update_search": ("PUT", "/searches/999999999", _json({"name": "s"}), "admin", 404),
    "searches.delete_search": ("DELETE", "/searches/999999999", {}, "admin", 404),
    "searches.searches_page": ("GET", "/ui/searches", {}, "read", 200),
    "alerts.list_alerts": ("GET", "/alerts", {}, "read", 200),
    "alerts.create_alert": (
        "POST",
        "/alerts",
        _json(
            {
                "name": "a",
                "search": {"q": "x"},
                "threshold": 1,
                "window": "1m",
                "webhook": "http://127.0.0.1:9/",
            }
        ),
        "admin",
        201,
    ),
    "alerts.get_alert": ("GET", "/alerts/999999999", {}, "read", 404),
    "alerts.update_alert": ("PUT", "/alerts/999999999", _json({"threshold": 2}), "admin", 404),
    "alerts.delete_alert": ("DELETE", "/alerts/999999999", {}, "admin", 404),
    "alerts.alert_events_list": ("GET", "/alerts/999999999/events", {}, "read", 404),
    "alerts.alerts_page": ("GET", "/ui/alerts", {}, "read", 200),
    "deadletters.list_dead_letters": ("GET", "/deadletters", {}, "read", 200),
    "deadletters.replay_dead_letters": (
        "POST",
        "/deadletters/replay",
        _json({"all": True}),
        "admin",
        200,
    ),
    "system.page": ("GET", "/system", {"headers": {"Accept": "text/html"}}, "read", 200),
    "system.status": ("GET", "/system/status", {}, "read", 200),
}
# Open to anyone: they reveal no log and change nothing.
OPEN_ROUTES = {
    "status.health": ("GET", "/health"),
    "static": ("GET", "/static/favicon.svg"),
    "auth.signin_form": ("GET", "/signin"),
    "loki.ready": ("GET", "/ready"),
    "loki.buildinfo": ("GET", "/loki/api/v1/status/buildinfo"),
}
OTHER = {"live.logs_socket", "auth.signin", "auth.signout"}  # tested below on their own
WRONG = {"ingest": "read", "read": "ingest", "admin": "read"}  # a key that must be refused


@pytest.fixture
def keyed(settings):
    return settings.with_overrides(ingest_keys=INGEST, read_keys=READ, admin_keys=ADMIN)


@pytest.fixture
def app(keyed):
    return create_app(keyed)


@pytest.fixture
def stored_id(app, client):
    """A stored log carrying MARKER, so a leak of log content would show."""
    response = client.post(
        "/data/", json={"message": MARKER, "source": MARKER}, headers={"X-API-Key": ADMIN}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["ids"][0]


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(ROUTES) | set(OPEN_ROUTES) | OTHER


def _call(client, endpoint, stored_id, headers=None):
    method, path, kwargs, _, _ = ROUTES[endpoint]
    kwargs = {**kwargs, "headers": {**kwargs.get("headers", {}), **(headers or {})}}
    return client.open(path.format(id=stored_id), method=method, **kwargs)


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_no_key_is_401_naming_the_scope(client, stored_id, endpoint):
    response = _call(client, endpoint, stored_id, {"Accept": "application/json"})
    scope = ROUTES[endpoint][3]
    body = response.get_data(as_text=True)
    assert response.status_code == 401, body
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="sluice"')
    assert response.get_json()["scope"] == scope
    assert response.get_json()["error"] == "unauthorized"
    assert MARKER not in body


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_unknown_key_is_401(client, stored_id, endpoint):
    response = _call(client, endpoint, stored_id, {"X-API-Key": "not-a-key-" + "x" * 20})
    assert response.status_code == 401
    assert "not known" in response.get_json()["message"]
    assert MARKER not in response.get_data(as_text=True)


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_wrong_scope_is_403_naming_the_scope(client, stored_id, endpoint):
    scope = ROUTES[endpoint][3]
    response = _call(client, endpoint, stored_id, {"X-API-Key": KEYS[WRONG[scope]]})
    body = response.get_data(as_text=True)
    assert response.status_code == 403, body
    assert response.get_json() == {
        "error": "forbidden",
        "message": f"The key '{WRONG[scope]}-1' lacks the {scope} scope.",
        "scope": scope,
        "status": 403,
    }
    assert MARKER not in body


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
@pytest.mark.parametrize("holder", ["right", "admin"])
def test_right_scope_succeeds(client, stored_id, endpoint, holder):
    _, _, _, scope, status = ROUTES[endpoint]
    key = KEYS[scope] if holder == "right" else ADMIN  # admin may also read and ingest
    response = _call(client, endpoint, stored_id, {"Authorization": f"Bearer {key}"})
    assert response.status_code == status, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("endpoint", sorted(OPEN_ROUTES))
def test_open_routes_need_no_key(client, endpoint):
    method, path = OPEN_ROUTES[endpoint]
    response = client.open(path, method=method)
    assert response.status_code in (200, 503), response.get_data(as_text=True)
    assert MARKER not in response.get_data(as_text=True)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {INGEST}"},
        {"X-API-Key": INGEST},
        {"Authorization": _basic("x", INGEST)},  # https://x:KEY@host/heroku/logs
        {"Authorization": _basic(INGEST, "")},  # https://KEY@host/...
        {"Authorization": "ApiKey " + base64.b64encode(f"id:{INGEST}".encode()).decode()},
        {"Authorization": f"ApiKey {INGEST}"},
    ],
    ids=["bearer", "x-api-key", "basic-password", "basic-user", "es-apikey", "es-apikey-raw"],
)
def test_every_way_of_sending_a_key(client, headers):
    response = client.post("/data/fast", json={"message": "m"}, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)


def test_elasticsearch_client_with_an_api_key_and_a_drain_url(live_server, keyed):
    from elasticsearch import Elasticsearch, helpers

    es = Elasticsearch(f"http://{live_server}", api_key=("id", INGEST), request_timeout=10)
    ok, errors = helpers.bulk(es, [{"_index": "app", "message": "from es"}], raise_on_error=False)
    assert (ok, errors) == (1, [])
    drain = f"http://x:{INGEST}@{live_server}/heroku/logs"
    headers = {"Content-Type": "application/logplex-1", "Logplex-Msg-Count": "1"}
    assert requests.post(drain, data=LOGPLEX, headers=headers, timeout=10).status_code == 204


def test_rate_limit_per_key_is_429_with_retry_after(settings):
    limited = settings.with_overrides(ingest_keys=INGEST, ingest_rate_limit="3/minute")
    client = create_app(limited).test_client()
    answers = [
        client.post("/data/fast", json={"message": "m"}, headers={"X-API-Key": INGEST})
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    refused = answers[-1]
    assert refused.get_json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Retry-After" not in answers[0].headers


def test_a_limit_set_off_counts_nothing_while_the_other_still_holds(settings):
    keyed = settings.with_overrides(
        ingest_keys=INGEST, read_keys=READ, ingest_rate_limit="off", read_rate_limit="2/minute"
    )
    client = create_app(keyed).test_client()
    posted = [
        client.post("/data/fast", json={"message": "m"}, headers={"X-API-Key": INGEST})
        for _ in range(5)
    ]
    assert [a.status_code for a in posted] == [202] * 5
    assert not any("X-RateLimit-Limit" in a.headers for a in posted)
    reads = [client.get("/logs", headers={"X-API-Key": READ}).status_code for _ in range(3)]
    assert reads == [200, 200, 429]


def test_open_mode_installs_no_limiter(settings):
    app = create_app(settings)  # no keys: no per-key limit can apply
    assert "sluice_limiter" not in app.extensions
    client = app.test_client()
    answer = client.post("/data/fast", json={"message": "m"})
    assert answer.status_code == 202
    assert "X-RateLimit-Limit" not in answer.headers


def test_cross_origin_post_is_refused_even_when_open(settings):
    client = create_app(settings).test_client()  # no keys: open for local use
    evil = {"Origin": "http://evil.example"}
    response = client.post("/data/fast", json={"message": "forged"}, headers=evil)
    assert response.status_code == 403
    assert response.get_json()["error"] == "cross_origin"
    same = {"Origin": "http://localhost"}
    assert client.post("/data/fast", json={"message": "m"}, headers=same).status_code == 202


# -- the web UI's session and the WebSocket ------------------------------------------------


def _signed_in(live_server, key=READ) -> requests.Session:
    session = requests.Session()
    answer = session.post(
        f"http://{live_server}/signin",
        data={"key": key, "next": "/"},
        headers={"Origin": f"http://{live_server}"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["Location"] == "/"
    return session


def test_signin_gives_a_strict_httponly_cookie(live_server):
    session = _signed_in(live_server)
    cookie = next(c for c in session.cookies if c.name == "sluice_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    page = session.get(f"http://{live_server}/logs", timeout=10)
    assert page.status_code == 200
    raw = requests.post(
        f"http://{live_server}/signin",
        data={"key": READ},
        headers={"Origin": f"http://{live_server}"},
        allow_redirects=False,
        timeout=10,
    ).headers["Set-Cookie"]
    assert "HttpOnly" in raw and "SameSite=Strict" in raw


@pytest.mark.parametrize("key", ["ingest-only", "unknown"])
def test_signin_refuses_keys_that_cannot_read(live_server, key):
    secret = INGEST if key == "ingest-only" else "nope-" + "n" * 20
    answer = requests.post(
        f"http://{live_server}/signin",
        data={"key": secret},
        headers={"Origin": f"http://{live_server}"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 401
    assert "sluice_session" not in answer.headers.get("Set-Cookie", "")


def test_signin_never_redirects_off_site(live_server):
    session = requests.Session()
    answer = session.post(
        f"http://{live_server}/signin",
        data={"key": READ, "next": "//evil.example/x"},
        headers={"Origin": f"http://{live_server}"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.headers["Location"] == "/"


def test_signout_ends_the_session(live_server):
    session = _signed_in(live_server)
    origin = {"Origin": f"http://{live_server}"}
    session.post(f"http://{live_server}/signout", headers=origin, timeout=10)
    assert session.get(f"http://{live_server}/logs", timeout=10).status_code == 401


@pytest.mark.parametrize(
    ("path", "back"),
    [("/?x=1", "/?x%3D1"), ("/system", "/system"), ("/ui/searches", "/ui/searches")],
)
def test_browser_without_session_is_sent_to_signin(client, path, back):
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/signin?next={back}"


def _ws(live_server, **options):
    return websocket.create_connection(f"ws://{live_server}/ws/logs", timeout=10, **options)


def _first_frame(ws) -> dict:
    return json.loads(ws.recv())


def test_websocket_needs_a_read_key(live_server):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _ws(live_server)
    assert refused.value.status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as wrong:
        _ws(live_server, header=[f"X-API-Key: {INGEST}"])
    assert wrong.value.status_code == 403
    ws = _ws(live_server, header=[f"Authorization: Bearer {READ}"])
    assert _first_frame(ws)["type"] == "filters"
    ws.close()


def test_websocket_accepts_the_session_cookie_from_this_origin_only(live_server):
    session = _signed_in(live_server)
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    ws = _ws(live_server, cookie=cookie, origin=f"http://{live_server}")
    assert _first_frame(ws)["type"] == "filters"
    ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as other_site:
        _ws(live_server, cookie=cookie, origin="http://evil.example")
    assert other_site.value.status_code == 403


def test_websocket_with_a_key_streams_new_logs(live_server, keyed):
    ws = _ws(live_server, header=[f"Authorization: Bearer {READ}"])
    assert _first_frame(ws)["type"] == "filters"
    stored = requests.post(
        f"http://{live_server}/data/",
        json={"message": "to the socket"},
        headers={"X-API-Key": INGEST},
        timeout=10,
    )
    assert stored.status_code == 201

    def frame():
        message = _first_frame(ws)
        return message if message["type"] == "logs" else None

    logs = wait_for(frame, timeout=10)["logs"]
    assert [log["message"] for log in logs] == ["to the socket"]
    ws.close()


def test_a_read_key_sees_where_a_webhook_goes_but_not_its_secret_path(client):
    alert = {
        "name": "errors",
        "search": {"min_level": "ERROR"},
        "threshold": 5,
        "window": "5m",
        "webhook": "https://hooks.slack.com/services/T000/B000/secretsecret",
    }
    created = client.post("/alerts", json=alert, headers={"X-API-Key": ADMIN})
    assert created.status_code == 201, created.get_data(as_text=True)
    path = f"/alerts/{created.get_json()['id']}"
    as_admin = client.get(path, headers={"X-API-Key": ADMIN}).get_json()
    as_reader = client.get(path, headers={"X-API-Key": READ}).get_json()
    assert as_admin["webhook"] == alert["webhook"]
    assert as_reader["webhook"] == "https://hooks.slack.com/…"
