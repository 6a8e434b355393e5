"""Settings from the environment: defaults, Heroku URLs, fail-fast on bad values."""

from __future__ import annotations

import pytest

from config.settings import ConfigError, load_settings


def test_defaults():
    s = load_settings({})
    assert s.stream_name == "log_queue"
    assert s.consumer_group == "workers"
    assert s.pubsub_channel == "new_logs"
    assert s.dead_letter_stream == "log_queue:dead"
    assert s.batch_size == 100
    assert s.max_retries == 3
    assert s.port == 8000
    assert s.database_read_url == s.database_url


def test_heroku_postgres_scheme_is_accepted():
    s = load_settings({"DATABASE_URL": "postgres://u:p@db.example:5432/x"})
    assert s.database_url == "postgresql+psycopg2://u:p@db.example:5432/x"


def test_dead_letter_stream_follows_the_stream_name():
    assert load_settings({"STREAM_NAME": "q"}).dead_letter_stream == "q:dead"


PRODUCTION = {
    "SLUICE_ENV": "production",
    "DATABASE_URL": "postgres://h/d",
    "REDIS_URL": "redis://h",
}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BATCH_SIZE": "lots"}, "BATCH_SIZE"),
        ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
        ({"PORT": "-1"}, "PORT"),
        ({"SYSLOG_PORT": "syslog"}, "SYSLOG_PORT"),
        ({"SYSLOG_TLS_PORT": "0"}, "SYSLOG_TLS_PORT"),
        ({"SYSLOG_TLS_CERT": "/nonexistent/cert.pem"}, "SYSLOG_TLS_CERT"),
        ({"DRAIN_INTERVAL": "soon"}, "DRAIN_INTERVAL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"SLUICE_ENV": "production"}, "DATABASE_URL"),
        ({**PRODUCTION}, "SLUICE_INGEST_KEYS, SLUICE_READ_KEYS, SLUICE_ADMIN_KEYS"),
        ({**PRODUCTION, "SLUICE_READ_KEYS": "r" * 20}, "FLOWER_BASIC_AUTH"),
        ({"SLUICE_READ_KEYS": "short"}, "SLUICE_READ_KEYS: key 1 is shorter than 16"),
        ({"SLUICE_KEYS_FILE": "/nonexistent/keys"}, "SLUICE_KEYS_FILE"),
        ({"INGEST_RATE_LIMIT": "fast"}, "INGEST_RATE_LIMIT"),
        ({"READ_RATE_LIMIT": "10/fortnight"}, "READ_RATE_LIMIT"),
    ],
)
def test_bad_values_fail_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_as_env_round_trips():
    s = load_settings({"BATCH_SIZE": "50", "STREAM_NAME": "abc"})
    assert load_settings(s.as_env()) == s


def test_log_format_json_is_accepted_in_any_case():
    assert load_settings({"LOG_FORMAT": "JSON"}).log_format == "json"
    assert load_settings({}).log_format == "text"


def test_production_with_admin_keys_gives_flower_their_password():
    s = load_settings({**PRODUCTION, "SLUICE_ADMIN_KEYS": "a" * 20 + "," + "b" * 20})
    assert s.flower_credentials == ["admin:" + "a" * 20, "admin:" + "b" * 20]
    assert s.bind_host == "0.0.0.0"


def test_no_keys_means_loopback_only():
    assert load_settings({}).bind_host == "127.0.0.1"


KEYS_FILE_CASES = [
    ("shipper ingest sha256:" + "0" * 64, None),
    ("ops admin,read sha256:" + "a" * 64 + "  # the on-call key", None),
    ("shipper ingest", "expected 'name scopes sha256:<hex>'"),
    ("shipper write sha256:" + "0" * 64, "scopes must be among ingest, read, admin"),
    ("shipper ingest " + "0" * 64, "sha256:<64 hex digits>"),
    ("shipper ingest sha256:" + "z" * 64, "is not hexadecimal"),
]


@pytest.mark.parametrize(("line", "problem"), KEYS_FILE_CASES)
def test_keys_file_lines(tmp_path, line, problem):
    path = tmp_path / "keys"
    path.write_text(f"# name scopes hash\n\n{line}\n")
    env = {"SLUICE_KEYS_FILE": str(path), "SLUICE_SECRET_KEY": "s" * 32}
    if problem is None:
        assert len(load_settings(env).keyring.keys) == 1
    else:
        with pytest.raises(ConfigError, match=f"SLUICE_KEYS_FILE line 3: .*{problem}"):
            load_settings(env)


def test_keys_file_alone_needs_a_secret_for_sessions(tmp_path):
    path = tmp_path / "keys"
    path.write_text("shipper ingest sha256:" + "0" * 64 + "\n")
    with pytest.raises(ConfigError, match="SLUICE_SECRET_KEY"):
        load_settings({"SLUICE_KEYS_FILE": str(path)})


def test_keys_file_holds_hashes_and_keys_match_in_full(tmp_path):
    from config.keys import digest, new_key

    key = new_key()
    path = tmp_path / "keys"
    path.write_text(f"grafana read sha256:{digest(key)}\n")
    ring = load_settings({"SLUICE_KEYS_FILE": str(path), "SLUICE_SECRET_KEY": "s" * 32}).keyring
    assert ring.find(key).name == "grafana"
    assert ring.find(key).allows("read") and not ring.find(key).allows("ingest")
    assert ring.find(key[:-1]) is None and ring.find(key + "x") is None
    assert ring.find("") is None and ring.find(None) is None
