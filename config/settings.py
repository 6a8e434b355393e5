"""Every setting Sluice reads, from environment variables with documented defaults.

The environment is parsed once into a frozen `Settings`; nothing else in Sluice reads
`os.environ`. A bad value fails at start-up and names the variable (Redash's
`settings/__init__.py` habit), so a typo never turns into a surprise at 3 a.m.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace


class ConfigError(ValueError):
    """A variable holds a value Sluice cannot use; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _str(env, name, default).lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _file(env: Mapping[str, str], name: str) -> str:
    path = _str(env, name, "")
    if path and not os.path.isfile(path):
        raise ConfigError(f"{name} names {path!r}, which is not a readable file")
    return path


def database_url(raw: str) -> str:
    """Accept Heroku's `postgres://` and plain `postgresql://`; use the psycopg2 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg2://" + raw[len(prefix) :]
    if raw.startswith("postgresql+psycopg2://"):
        return raw
    raise ConfigError(f"DATABASE_URL must be a postgres:// or postgresql:// URL, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    """Typed configuration. Field docs live in README's configuration table."""

    env: str = "development"
    database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/sluice"
    database_read_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    port: int = 8000
    stream_name: str = "log_queue"
    consumer_group: str = "workers"
    pubsub_channel: str = "new_logs"
    dead_letter_stream: str = ""
    celery_queue: str = "sluice"
    key_prefix: str = "sluice"
    batch_size: int = 100
    max_retries: int = 3
    drain_interval: float = 1.0
    drain_budget: float = 5.0
    claim_idle_ms: int = 15_000
    stream_maxlen: int = 1_000_000
    dead_letter_maxlen: int = 100_000
    max_batch: int = 10_000
    max_content_length: int = 16 * 1024 * 1024
    retention_days: int = 14
    partition_days_ahead: int = 3
    ws_buffer: int = 256
    ws_ping_interval: float = 20.0
    flower_port: int = 5555
    flower_basic_auth: str = ""
    parser_patterns: str = ""
    parser_patterns_file: str = ""
    log_level: str = "INFO"
    log_format: str = "text"
    syslog_port: int = 5514
    syslog_tls_port: int = 6514
    syslog_tls_cert: str = ""
    syslog_tls_key: str = ""
    # WebSocket limits (issue 9): catch-up cap, client message size, send timeout, connections.
    ws_catchup_max: int = 10_000
    ws_max_message: int = 65_536
    ws_send_timeout: float = 30.0
    ws_max_connections: int = 800

    def __post_init__(self) -> None:
        # Derived defaults: the read replica falls back to the primary, the dead-letter
        # stream sits beside the queue it belongs to.
        if not self.database_read_url:
            object.__setattr__(self, "database_read_url", self.database_url)
        if not self.dead_letter_stream:
            object.__setattr__(self, "dead_letter_stream", f"{self.stream_name}:dead")

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def with_overrides(self, **overrides) -> Settings:
        """A copy with some fields replaced (tests use this for unique stream names)."""
        if "stream_name" in overrides and "dead_letter_stream" not in overrides:
            overrides["dead_letter_stream"] = f"{overrides['stream_name']}:dead"
        if "database_url" in overrides and "database_read_url" not in overrides:
            overrides["database_read_url"] = overrides["database_url"]
        return replace(self, **overrides)

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, for starting subprocesses alike."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == "":  # unset stays unset (Flower reads FLOWER_BASIC_AUTH="" as on)
                continue
            out["SLUICE_ENV" if f.name == "env" else f.name.upper()] = str(value)
        return out


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every variable; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    d = Settings()
    settings = Settings(
        env=_str(env, "SLUICE_ENV", d.env),
        database_url=database_url(_str(env, "DATABASE_URL", d.database_url)),
        database_read_url=(
            database_url(env["DATABASE_READ_URL"]) if env.get("DATABASE_READ_URL") else ""
        ),
        redis_url=_str(env, "REDIS_URL", d.redis_url),
        port=_int(env, "PORT", d.port, 1),
        stream_name=_str(env, "STREAM_NAME", d.stream_name),
        consumer_group=_str(env, "CONSUMER_GROUP", d.consumer_group),
        pubsub_channel=_str(env, "PUBSUB_CHANNEL", d.pubsub_channel),
        dead_letter_stream=_str(env, "DEAD_LETTER_STREAM", ""),
        celery_queue=_str(env, "CELERY_QUEUE", d.celery_queue),
        key_prefix=_str(env, "KEY_PREFIX", d.key_prefix),
        batch_size=_int(env, "BATCH_SIZE", d.batch_size, 1),
        max_retries=_int(env, "MAX_RETRIES", d.max_retries, 0),
        drain_interval=_float(env, "DRAIN_INTERVAL", d.drain_interval, 0.05),
        drain_budget=_float(env, "DRAIN_BUDGET", d.drain_budget, 0.1),
        claim_idle_ms=_int(env, "CLAIM_IDLE_MS", d.claim_idle_ms, 100),
        stream_maxlen=_int(env, "STREAM_MAXLEN", d.stream_maxlen, 1),
        dead_letter_maxlen=_int(env, "DEAD_LETTER_MAXLEN", d.dead_letter_maxlen, 1),
        max_batch=_int(env, "MAX_BATCH", d.max_batch, 1),
        max_content_length=_int(env, "MAX_CONTENT_LENGTH", d.max_content_length, 1024),
        retention_days=_int(env, "RETENTION_DAYS", d.retention_days, 1),
        partition_days_ahead=_int(env, "PARTITION_DAYS_AHEAD", d.partition_days_ahead, 1),
        ws_buffer=_int(env, "WS_BUFFER", d.ws_buffer, 1),
        ws_ping_interval=_float(env, "WS_PING_INTERVAL", d.ws_ping_interval, 0.1),
        flower_port=_int(env, "FLOWER_PORT", d.flower_port, 1),
        flower_basic_auth=_str(env, "FLOWER_BASIC_AUTH", ""),
        parser_patterns=_str(env, "PARSER_PATTERNS", ""),
        parser_patterns_file=_str(env, "PARSER_PATTERNS_FILE", ""),
        log_level=_str(env, "LOG_LEVEL", d.log_level).upper(),
        log_format=_choice(env, "LOG_FORMAT", d.log_format, ("text", "json")),
        syslog_port=_int(env, "SYSLOG_PORT", d.syslog_port, 1),
        syslog_tls_port=_int(env, "SYSLOG_TLS_PORT", d.syslog_tls_port, 1),
        syslog_tls_cert=_file(env, "SYSLOG_TLS_CERT"),
        syslog_tls_key=_file(env, "SYSLOG_TLS_KEY"),
        # WebSocket limits (issue 9)
        ws_catchup_max=_int(env, "WS_CATCHUP_MAX", d.ws_catchup_max, 1),
        ws_max_message=_int(env, "WS_MAX_MESSAGE", d.ws_max_message, 256),
        ws_send_timeout=_float(env, "WS_SEND_TIMEOUT", d.ws_send_timeout, 0.1),
        ws_max_connections=_int(env, "WS_MAX_CONNECTIONS", d.ws_max_connections, 1),
    )
    if settings.is_production:
        _refuse_unsafe(env)
    return settings


def _refuse_unsafe(env: Mapping[str, str]) -> None:
    """In production, defaults that only make sense on a laptop are errors."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not env.get(name):
            raise ConfigError(f"{name} must be set when SLUICE_ENV=production")
    if not env.get("FLOWER_BASIC_AUTH"):
        raise ConfigError(
            "FLOWER_BASIC_AUTH must be set (user:password) when SLUICE_ENV=production"
        )
