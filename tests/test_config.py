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
        (
            {
                "SLUICE_ENV": "production",
                "DATABASE_URL": "postgres://h/d",
                "REDIS_URL": "redis://h",
            },
            "FLOWER_BASIC_AUTH",
        ),
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
