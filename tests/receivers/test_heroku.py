"""Heroku log drains: a logplex POST byte for byte as Heroku documents it, retried."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

# https://devcenter.heroku.com/articles/log-drains#https-drains: headers and body verbatim.
BODY = (
    b"83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up\n"
    b"119 <40>1 2012-11-30T06:45:26+00:00 host app web.3 - Starting process with command "
    b"`bundle exec rackup config.ru -p 24405`\n"
)
HEADERS = {
    "Content-Type": "application/logplex-1",
    "Logplex-Msg-Count": "2",
    "Logplex-Frame-Id": "09C557EAFCFB6CF2740EE62F62971098",
    "Logplex-Drain-Token": "d.fc6b856b-3332-4546-93de-7d0ee272c3bd",
    "User-Agent": "Logplex/v72",
}


def test_documented_frame_sent_twice_is_stored_once(live_server, rows, r, settings):
    url = f"http://{live_server}/heroku/logs?app=billing"
    first = requests.post(url, data=BODY, headers=HEADERS, timeout=10)
    retry = requests.post(url, data=BODY, headers=HEADERS, timeout=10)
    assert (first.status_code, retry.status_code) == (204, 204)
    up, starting = rows()
    assert up["timestamp"] == datetime(2012, 11, 30, 6, 45, 29, tzinfo=UTC)
    assert (up["level"], up["source"], up["application"]) == ("CRITICAL", "web.3", "billing")
    assert up["message"] == "State changed from starting to up"
    assert up["metadata"] == {
        "facility": 5,
        "facility_name": "syslog",
        "severity": 0,
        "version": 1,
        "msgid": None,
        "format": "logplex",
        "heroku_source": "app",
        "dyno": "web.3",
        "drain_token": HEADERS["Logplex-Drain-Token"],
        "frame_id": HEADERS["Logplex-Frame-Id"],
    }
    assert starting["timestamp"] == datetime(2012, 11, 30, 6, 45, 26, tzinfo=UTC)
    assert (
        starting["message"]
        == "Starting process with command `bundle exec rackup config.ru -p 24405`"
    )
    counts = r.hgetall(f"{settings.key_prefix}:counters")
    assert counts[b"ingest_retries_skipped"] == b"2"


def test_without_app_the_drain_token_names_the_application(client, rows):
    headers = {**HEADERS, "Logplex-Frame-Id": "other"}
    assert client.post("/heroku/logs", data=BODY, headers=headers).status_code == 204
    assert {row["application"] for row in rows()} == {HEADERS["Logplex-Drain-Token"]}


def test_bad_frames_cost_only_themselves(client, rows):
    big = b"<40>1 2012-11-30T06:45:29+00:00 host app web.1 - " + b"x" * 70_000
    body = BODY + b"%d %s" % (len(big), big) + b"12 <40>1 short"
    headers = {**HEADERS, "Logplex-Msg-Count": "4", "Logplex-Frame-Id": "bad-frames"}
    response = client.post("/heroku/logs", data=body, headers=headers)
    assert response.status_code == 400
    assert "larger than the limit" in response.text and "cut short" in response.text
    assert [row["message"] for row in rows()] == [
        "State changed from starting to up",
        "Starting process with command `bundle exec rackup config.ru -p 24405`",
    ]


def test_msg_count_mismatch_is_400_but_keeps_the_frames(client, rows):
    headers = {**HEADERS, "Logplex-Msg-Count": "3", "Logplex-Frame-Id": "count"}
    response = client.post("/heroku/logs", data=BODY, headers=headers)
    assert response.status_code == 400
    assert "Logplex-Msg-Count is 3 but the body holds 2 frames" in response.text
    assert len(rows()) == 2


def test_queue_full_is_429_and_the_retry_is_then_taken(app, client, settings, rows):
    headers = {**HEADERS, "Logplex-Frame-Id": "full"}
    app.extensions["sluice"] = settings.with_overrides(stream_maxlen=1)
    refused = client.post("/heroku/logs", data=BODY, headers=headers)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "5")
    app.extensions["sluice"] = settings
    assert client.post("/heroku/logs", data=BODY, headers=headers).status_code == 204
    assert len(rows()) == 2


def test_other_content_types_are_415(client):
    assert client.post("/heroku/logs", data=BODY, content_type="text/plain").status_code == 415
