"""Every setting Sluice reads, from environment variables with documented defaults.

The environment is parsed once into a frozen `Settings`; nothing else in Sluice reads
`os.environ`. A bad value fails at start-up and names the variable (Redash's
`settings/__init__.py` habit), so a typo never turns into a surprise at 3 a.m.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from config.keys import KeyDefinitionError, Keyring, from_file, from_lists


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


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default, 0.0)
    if value > 1.0:
        raise ConfigError(f"{name} must be a fraction between 0 and 1, got {value}")
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


_HOST_NAME = re.compile(r"^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$")


def _hosts(env: Mapping[str, str], name: str) -> str:
    hosts = [h.strip() for h in _str(env, name, "").split(",") if h.strip()]
    for host in hosts:
        if not _HOST_NAME.match(host):
            raise ConfigError(f"{name} must be comma-separated host names, got {host!r}")
    return ",".join(hosts)


def _public_url(env: Mapping[str, str], name: str) -> str:
    value = _str(env, name, "").rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return value


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    """A rate like `2000/second` or `100/minute` (Flask-Limiter's notation); `off` for none."""
    value = _str(env, name, default).lower()
    if value == "off":
        return value
    count, _, per = value.partition("/")
    if not count.strip().isdigit() or per.strip() not in ("second", "minute", "hour", "day"):
        raise ConfigError(f"{name} must look like 2000/second or 100/minute, got {value!r}")
    return value


PRIVATE_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def _networks(env: Mapping[str, str], name: str) -> str:
    raw = _str(env, name, "")
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {part!r} is not an address or network") from None
    return raw


_ENV_NAMES = {
    "env": "SLUICE_ENV",
    **{
        name: f"SLUICE_{name.upper()}"
        for name in ("ingest_keys", "read_keys", "admin_keys", "keys_file", "secret_key")
    },
}


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
    max_content_length: int = 5 * 1024 * 1024
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
    # Write-side limits (issue 9): nesting, time window, bytes in Redis.
    max_json_depth: int = 32
    max_future_seconds: int = 86_400
    queue_max_bytes: int = 256 * 1024 * 1024
    redis_memory_high: float = 0.9
    dead_letter_max_bytes: int = 64 * 1024 * 1024
    # Alerts and their webhooks (issue 12)
    alert_interval: float = 60.0
    alert_fast_interval: float = 10.0
    alert_webhook_hosts: str = ""
    alert_webhook_timeout: float = 5.0
    alert_webhook_retries: int = 5
    alert_retry_delay: float = 10.0
    public_url: str = ""
    # Access control (issue 9): see config/keys.py and README "Security".
    ingest_keys: str = ""
    read_keys: str = ""
    admin_keys: str = ""
    keys_file: str = ""
    secret_key: str = ""
    syslog_allow: str = ""
    ingest_rate_limit: str = "2000/second"
    read_rate_limit: str = "50/second"
    keyring: Keyring = field(default=Keyring(), compare=False, repr=False)
    # Reads: their own pool and a statement timeout, so slow reads cannot starve writes.
    read_statement_timeout_ms: int = 10_000
    read_pool_size: int = 5
    read_pool_timeout: float = 5.0
    # Parallel writers (issue 11): drain chains that may run at once. Two, because on two
    # cores a second writer's work overlaps the first's commit wait (README "Benchmarks").
    drain_writers: int = 2
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
        object.__setattr__(self, "keyring", self._load_keys())

    def _load_keys(self) -> Keyring:
        try:
            keys = from_lists(self.ingest_keys, self.read_keys, self.admin_keys)
            if self.keys_file:
                with open(self.keys_file, encoding="utf-8") as handle:
                    keys += from_file(handle.read(), "SLUICE_KEYS_FILE")
        except KeyDefinitionError as exc:
            raise ConfigError(str(exc)) from None
        except OSError as exc:
            raise ConfigError(f"SLUICE_KEYS_FILE cannot be read: {exc.strerror}") from None
        return Keyring(tuple(keys))

    @property
    def session_secret(self) -> str:
        """What signs the UI's session cookie: SLUICE_SECRET_KEY, else derived from the keys.

        Derived from the keys themselves (never from the hashes in SLUICE_KEYS_FILE, which
        are not secret), so every process agrees and rotating the keys ends the sessions.
        """
        if self.secret_key:
            return self.secret_key
        secrets = sorted(k.secret for k in self.keyring.keys if k.secret)
        if not secrets:
            return ""
        return hashlib.sha256(("sluice-session\0" + "\0".join(secrets)).encode()).hexdigest()

    @property
    def flower_credentials(self) -> list[str]:
        """Flower's basic auth: FLOWER_BASIC_AUTH, else `admin:<key>` per admin key."""
        if self.flower_basic_auth:
            return [c for c in self.flower_basic_auth.split(",") if c]
        return [f"admin:{secret}" for secret in self.keyring.admin_secrets()]

    @property
    def syslog_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Peers the syslog listener takes frames from (syslog carries no key).

        SYSLOG_ALLOW, else loopback and the private ranges when keys exist, else anyone
        (the listener then binds loopback only, like the web process).
        """
        raw = self.syslog_allow or (PRIVATE_NETWORKS if self.keyring else "0.0.0.0/0,::/0")
        return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in raw.split(","))

    @property
    def bind_host(self) -> str:
        """With no key Sluice is open, so it listens on loopback only."""
        return "0.0.0.0" if self.keyring else "127.0.0.1"

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
            if f.name == "keyring":
                continue
            if value == "":  # unset stays unset (Flower reads FLOWER_BASIC_AUTH="" as on)
                continue
            out[_ENV_NAMES.get(f.name, f.name.upper())] = str(value)
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
        # Write-side limits (issue 9).
        max_json_depth=_int(env, "MAX_JSON_DEPTH", d.max_json_depth, 1),
        max_future_seconds=_int(env, "MAX_FUTURE_SECONDS", d.max_future_seconds, 0),
        queue_max_bytes=_int(env, "QUEUE_MAX_BYTES", d.queue_max_bytes, 1024 * 1024),
        redis_memory_high=_fraction(env, "REDIS_MEMORY_HIGH", d.redis_memory_high),
        dead_letter_max_bytes=_int(env, "DEAD_LETTER_MAX_BYTES", d.dead_letter_max_bytes, 65_536),
        # Alerts and their webhooks (issue 12)
        alert_interval=_float(env, "ALERT_INTERVAL", d.alert_interval, 0.1),
        alert_fast_interval=_float(env, "ALERT_FAST_INTERVAL", d.alert_fast_interval, 0.1),
        alert_webhook_hosts=_hosts(env, "ALERT_WEBHOOK_HOSTS"),
        alert_webhook_timeout=_float(env, "ALERT_WEBHOOK_TIMEOUT", d.alert_webhook_timeout, 0.1),
        alert_webhook_retries=_int(env, "ALERT_WEBHOOK_RETRIES", d.alert_webhook_retries, 0),
        alert_retry_delay=_float(env, "ALERT_RETRY_DELAY", d.alert_retry_delay, 0.1),
        public_url=_public_url(env, "PUBLIC_URL"),
        ingest_keys=_str(env, "SLUICE_INGEST_KEYS", ""),
        read_keys=_str(env, "SLUICE_READ_KEYS", ""),
        admin_keys=_str(env, "SLUICE_ADMIN_KEYS", ""),
        keys_file=_file(env, "SLUICE_KEYS_FILE"),
        secret_key=_str(env, "SLUICE_SECRET_KEY", ""),
        syslog_allow=_networks(env, "SYSLOG_ALLOW"),
        ingest_rate_limit=_rate(env, "INGEST_RATE_LIMIT", d.ingest_rate_limit),
        read_rate_limit=_rate(env, "READ_RATE_LIMIT", d.read_rate_limit),
        # Reads
        read_statement_timeout_ms=_int(
            env, "READ_STATEMENT_TIMEOUT_MS", d.read_statement_timeout_ms, 100
        ),
        read_pool_size=_int(env, "READ_POOL_SIZE", d.read_pool_size, 1),
        read_pool_timeout=_float(env, "READ_POOL_TIMEOUT", d.read_pool_timeout, 0.1),
        # Parallel writers (issue 11)
        drain_writers=_int(env, "DRAIN_WRITERS", d.drain_writers, 1),
        # WebSocket limits (issue 9)
        ws_catchup_max=_int(env, "WS_CATCHUP_MAX", d.ws_catchup_max, 1),
        ws_max_message=_int(env, "WS_MAX_MESSAGE", d.ws_max_message, 256),
        ws_send_timeout=_float(env, "WS_SEND_TIMEOUT", d.ws_send_timeout, 0.1),
        ws_max_connections=_int(env, "WS_MAX_CONNECTIONS", d.ws_max_connections, 1),
    )
    if settings.keyring and not settings.session_secret:
        raise ConfigError(
            "SLUICE_SECRET_KEY must be set when the keys come only from SLUICE_KEYS_FILE"
            " (it signs the web UI's session cookie)"
        )
    if settings.is_production:
        _refuse_unsafe(env, settings)
    return settings


def _refuse_unsafe(env: Mapping[str, str], settings: Settings) -> None:
    """In production, defaults that only make sense on a laptop are errors."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not env.get(name):
            raise ConfigError(f"{name} must be set when SLUICE_ENV=production")
    if not settings.keyring:
        raise ConfigError(
            "SLUICE_INGEST_KEYS, SLUICE_READ_KEYS, SLUICE_ADMIN_KEYS or SLUICE_KEYS_FILE must"
            " be set when SLUICE_ENV=production: without keys anyone could read every log"
        )
    if not settings.flower_credentials:
        raise ConfigError(
            "FLOWER_BASIC_AUTH must be set (user:password) when SLUICE_ENV=production"
            " and no SLUICE_ADMIN_KEYS gives Flower its password"
        )
