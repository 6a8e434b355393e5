"""Dead letters: listed newest first with their reasons, replayed exactly once through
intake after the cause is fixed; real Redis, PostgreSQL and the real drain."""

from __future__ import annotations

import uuid

import orjson
import pytest
import redis
from sqlalchemy import text

from app.pipeline import deadletters, stream
from app.pipeline.connections import engine
from parsers import RegexParser, get_factory
from tasks.drain import drain_stream
from tests.helpers import count_logs, redis_url_without

LONG_HOST = "h" * 300  # longer than a source may be (255)


@pytest.fixture
def custom_format():
    """A custom format whose first word is the source: a long first word is poison."""
    name = f"t{uuid.uuid4().hex[:8]}"
    factory = get_factory()
    factory.add_parser(RegexParser(name, r"^(?P<source>\S+) (?P<message>.+)$"))
    yield name
    factory.remove_parser(name)


def fix(name: str) -> None:
    """The pattern corrected: the first word goes to metadata, not to `source`."""
    get_factory().add_parser(RegexParser(name, r"^(?P<host>\S+) (?P<message>.+)$"), replace=True)


def poison(client, settings, name: str, lines: list[str]) -> None:
    body = "\n".join(lines)
    answer = client.post(f"/data/fast?format={name}", data=body, content_type="text/plain")
    assert answer.status_code == 202, answer.json
    drain_stream(settings, "c1", budget=0.3)


def test_poisoned_line_is_listed_with_its_reason_then_replayed_once(
    client, r, settings, db, custom_format
):
    poison(client, settings, custom_format, ["web-1 fine", f"{LONG_HOST} payment failed"])
    assert count_logs(db) == 1

    listed = client.get("/deadletters").json
    assert listed["total"] == 1
    (dead,) = listed["dead_letters"]
    assert "source" in dead["reason"] and "255" in dead["reason"]
    assert dead["kind"] == "line" and dead["format"] == custom_format
    assert dead["body"] == f"{LONG_HOST} payment failed"

    fix(custom_format)
    answer = client.post("/deadletters/replay", json={"ids": [dead["id"]]})
    assert answer.status_code == 200, answer.json
    assert [x["id"] for x in answer.json["replayed"]] == [dead["id"]]
    assert answer.json["remaining"] == 0
    # The same replay again (a client retrying): nothing is enqueued twice.
    again = client.post("/deadletters/replay", json={"ids": [dead["id"]]}).json
    assert again["not_found"] == [dead["id"]] and again["replayed"] == []

    drain_stream(settings, "c1", budget=0.3)
    assert count_logs(db) == 2
    assert count_logs(db, "message = 'payment failed'") == 1
    row = db.execute(text("SELECT source, metadata FROM logs WHERE message = 'payment failed'"))
    source, metadata = row.one()
    assert source is None and metadata["host"] == LONG_HOST
    assert client.get("/deadletters").json["total"] == 0


def test_a_retry_after_the_enqueue_but_before_the_removal_enqueues_nothing(
    client, r, settings, db, custom_format
):
    poison(client, settings, custom_format, [f"{LONG_HOST} once only"])
    ((dead_id, _),) = r.xrange(settings.dead_letter_stream)
    dead_id = dead_id.decode()
    fix(custom_format)
    # A replay that dies between its enqueue and its XDEL: Redis refuses it the XDEL.
    user = f"noxdel-{uuid.uuid4().hex[:6]}"
    crippled = redis.Redis.from_url(redis_url_without(r, settings, user, "xdel"))
    try:
        with engine(settings.database_url).connect() as conn:
            with pytest.raises(redis.ResponseError, match="no permissions"):
                deadletters.replay(crippled, settings, conn, [dead_id])
            assert r.xlen(settings.dead_letter_stream) == 1  # still there: the retry's job
            second = deadletters.replay(r, settings, conn, [dead_id])
    finally:
        crippled.close()
        r.acl_deluser(user)
    assert second.already_replayed == [dead_id] and second.replayed == []
    assert r.xlen(settings.dead_letter_stream) == 0
    drain_stream(settings, "c1", budget=0.3)
    assert count_logs(db, "message = 'once only'") == 1


def test_replay_all_keeps_what_still_fails(client, r, settings, db, custom_format):
    stream.ensure_group(r, settings)
    r.xadd(settings.stream_name, {"d": b"{not json"})
    poison(client, settings, custom_format, [f"{LONG_HOST} a", f"{LONG_HOST} b"])
    assert r.xlen(settings.dead_letter_stream) == 3
    fix(custom_format)
    answer = client.post("/deadletters/replay", json={"all": True}).json
    assert len(answer["replayed"]) == 2
    assert [f["errors"] for f in answer["failed"]] == [
        {"d": [answer["failed"][0]["errors"]["d"][0]]}
    ]
    assert "Not JSON" in answer["failed"][0]["errors"]["d"][0]
    assert answer["remaining"] == 1
    drain_stream(settings, "c1", budget=0.3)
    assert count_logs(db, "message IN ('a', 'b')") == 2


def test_a_structured_log_is_replayed_and_one_already_stored_is_not(client, r, settings, db):
    stream.ensure_group(r, settings)
    log = {"message": "was stored after all", "level": "ERROR"}
    first = r.xadd(settings.stream_name, {"d": orjson.dumps(log)}).decode()
    drain_stream(settings, "c1", budget=0.3)
    assert count_logs(db) == 1
    # Dead-lettered for its deliveries although its commit went through (the ack was lost).
    r.xadd(
        settings.dead_letter_stream,
        {
            "d": orjson.dumps(log),
            "stream_id": first,
            "reason": "delivered 4 times",
            "deliveries": 4,
        },
    )
    r.xadd(
        settings.dead_letter_stream,
        {"d": orjson.dumps({"message": "never stored"}), "stream_id": "1-1", "reason": "x"},
    )
    answer = client.post("/deadletters/replay", json={"all": True}).json
    assert len(answer["already_stored"]) == 1 and len(answer["replayed"]) == 1
    drain_stream(settings, "c1", budget=0.3)
    assert count_logs(db, "message = 'was stored after all'") == 1
    assert count_logs(db, "message = 'never stored'") == 1


def test_listing_is_newest_first_and_paged(client, r, settings):
    ids = [
        r.xadd(settings.dead_letter_stream, {"r": f"line {i}".encode(), "reason": f"why {i}"})
        for i in range(5)
    ]
    first = client.get("/deadletters?limit=2").json
    assert [d["reason"] for d in first["dead_letters"]] == ["why 4", "why 3"]
    assert first["next_before"] == ids[3].decode() and first["total"] == 5
    rest = client.get(f"/deadletters?limit=10&before={first['next_before']}").json
    assert [d["reason"] for d in rest["dead_letters"]] == ["why 2", "why 1", "why 0"]
    assert rest["next_before"] is None
    assert client.get("/deadletters?before=0-0").json["dead_letters"] == []


@pytest.mark.parametrize(
    ("request_args", "field"),
    [
        ({"method": "GET", "path": "/deadletters?limit=0"}, "limit"),
        ({"method": "GET", "path": "/deadletters?before=yesterday"}, "before"),
        ({"method": "GET", "path": "/deadletters?page=2"}, "page"),
        ({"method": "GET", "path": "/deadletters?before=18446744073709551616-0"}, "before"),
        ({"method": "POST", "path": "/deadletters/replay", "json": {}}, "ids"),
        ({"method": "POST", "path": "/deadletters/replay", "json": {"ids": ["x"]}}, "ids"),
        (
            {
                "method": "POST",
                "path": "/deadletters/replay",
                "json": {"ids": ["1-0"], "all": True},
            },
            "ids",
        ),
        (
            {"method": "POST", "path": "/deadletters/replay", "json": {"all": True, "limit": 0}},
            "limit",
        ),
    ],
)
def test_bad_requests_name_the_field(client, request_args, field):
    args = dict(request_args)
    answer = client.open(args.pop("path"), method=args.pop("method"), **args)
    assert answer.status_code == 400
    assert answer.json["error"] == "validation_error"
    assert field in answer.json["fields"], answer.json
