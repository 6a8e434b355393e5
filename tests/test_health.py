"""GET /health: Redis persistence, the oldest undrained log, dead letters; `degraded`
when Redis keeps nothing on disk; nothing about errors, hosts or users revealed."""

from __future__ import annotations

import time

import pytest
import redis

from app import create_app
from app.pipeline import stream
from tests.redisserver import redis_server


@pytest.fixture
def on_redis(tmp_path, settings):
    """Settings and a client for an app on a private redis-server started with `args`."""

    def start(*args: str):
        server = redis_server(tmp_path, *args)
        url = server.__enter__()
        started.append(server)
        app_settings = settings.with_overrides(redis_url=url)
        return app_settings, create_app(app_settings).test_client()

    started = []
    yield start
    for server in started:
        server.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("args", "aof", "rdb", "status"),
    [
        (
            ("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
            "on",
            "off",
            "healthy",
        ),
        (("--appendonly", "no", "--save", "3600", "1"), "off", "on", "healthy"),
        (("--appendonly", "no", "--save", ""), "off", "off", "degraded"),
    ],
    ids=["aof", "rdb", "nothing-on-disk"],
)
def test_persistence_decides_healthy_or_degraded(on_redis, args, aof, rdb, status):
    _, client = on_redis(*args)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json["status"] == status, response.json
    assert response.json["persistence"] == {"aof": aof, "rdb": rdb}


def test_oldest_undrained_age_and_dead_letters(on_redis):
    settings, client = on_redis("--appendonly", "yes")
    r = redis.Redis.from_url(settings.redis_url)
    assert client.get("/health").json["oldest_undrained_seconds"] == 0
    client.post("/data/fast", json=[{"message": "waiting"}])
    time.sleep(0.3)
    r.xadd(settings.dead_letter_stream, {"d": b"{}", "reason": "test"})
    body = client.get("/health").json
    assert body["oldest_undrained_seconds"] >= 0.25
    assert body["dead_letters"] == 1
    stream.ensure_group(r, settings)
    assert client.get("/health").json["oldest_undrained_seconds"] >= 0.25


def test_a_refused_config_is_unknown_not_degraded(on_redis, tmp_path):
    # Managed Redis often refuses CONFIG; AOF is still read from INFO.
    settings, _ = on_redis("--appendonly", "no", "--save", "")
    r = redis.Redis.from_url(settings.redis_url)
    r.acl_setuser("noconfig", enabled=True, nopass=True, keys=["*"], commands=["+@all", "-config"])
    url = settings.redis_url.replace("127.0.0.1", "noconfig:x@127.0.0.1")
    client = create_app(settings.with_overrides(redis_url=url)).test_client()
    body = client.get("/health").json
    assert body["persistence"] == {"aof": "off", "rdb": "unknown"}
    assert body["status"] == "healthy"


def test_down_reveals_no_error_text_or_host(app, client, settings):
    app.extensions["sluice"] = settings.with_overrides(
        redis_url="redis://someuser:secret@127.0.0.1:1/0",
        database_url="postgresql+psycopg2://dbuser:pw@127.0.0.1:1/gone",
    )
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json["status"] == "unhealthy"
    assert (response.json["redis"], response.json["database"]) == ("down", "down")
    text = response.get_data(as_text=True)
    for secret in ("127.0.0.1", "someuser", "dbuser", "secret", "refused", "gone"):
        assert secret not in text
