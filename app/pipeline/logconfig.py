"""Sluice's own log lines, set up alike in every process (web, worker, beat, syslog).

LOG_FORMAT=text gives `time LEVEL logger: message`; LOG_FORMAT=json one JSON object per
line, for platforms that parse their logs. The standard `logging` module, no extra
dependency.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Celery's per-task lines ("Task ... received", "... succeeded in 0.9s") are INFO: with a
# drain scheduled every second they would be most of the log. Their failures and
# retries are WARNING or above and still show; the drain logs its own summary.
QUIET = ("celery.worker.strategy", "celery.app.trace")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup(settings: Settings) -> None:
    """Configure the root logger once per process from LOG_LEVEL and LOG_FORMAT."""
    root = logging.getLogger()
    if not any(getattr(h, "sluice", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.sluice = True  # create_app runs once per test: add one handler only
        root.addHandler(handler)
    for handler in root.handlers:
        if getattr(handler, "sluice", False):
            fmt = JsonFormatter() if settings.log_format == "json" else None
            handler.setFormatter(fmt or logging.Formatter(TEXT_FORMAT))
    root.setLevel(settings.log_level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
