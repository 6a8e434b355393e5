"""Log parsers: pure functions of a string, one module per format, one factory per process.

    from parsers import parse_line
    fmt, log = parse_line('<34>Oct 11 22:14:15 mymachine su: failed')  # ("syslog3164", ...)

Standard library only (plus `regex`, for custom patterns with a time limit): no Flask,
Redis, database or config here, so the drain and the API share them and tests fuzz them.
"""

from __future__ import annotations

import logging
from datetime import datetime

from parsers.base import LogParser, ParsedLog
from parsers.custom import RegexParser, build_custom_parsers
from parsers.factory import RAW, ParserFactory, UnknownFormatError

__all__ = [
    "FORMATS",
    "RAW",
    "LogParser",
    "ParsedLog",
    "ParserFactory",
    "RegexParser",
    "UnknownFormatError",
    "build_custom_parsers",
    "detect_format",
    "get_factory",
    "list_formats",
    "parse_line",
]

log = logging.getLogger(__name__)

# Built-in format names in detection order; `raw` is the fallback, not detected.
FORMATS = ("json", "syslog5424", "syslog3164", "apache", "logfmt")

# One per process: building it only compiles regexes, and custom parsers registered at
# worker start-up must be seen by every later parse.
_FACTORY = ParserFactory()
_warned_formats: set[str] = set()


def get_factory() -> ParserFactory:
    """The process-wide factory; register custom parsers on it at start-up."""
    return _FACTORY


def detect_format(raw: str) -> str | None:
    """The format name of `raw`, or None when no format but raw fits."""
    return _FACTORY.detect_format(raw)


def parse_line(
    raw: str, fmt: str | None = None, now: datetime | None = None
) -> tuple[str, ParsedLog]:
    """`(format name, ParsedLog)` for one line; never raises, unknown lines come back raw.

    `now` anchors formats without a year (BSD syslog: the drain passes the time the line
    was received); None means the current time.

    An unregistered `fmt` (say, a custom format removed from configuration while its lines
    were queued) is not an error here: the line is kept raw and a warning logged once.
    Validate names at the API edge with `get_factory().get(name)`.
    """
    try:
        return _FACTORY.parse(raw, fmt, now)
    except UnknownFormatError:
        if fmt not in _warned_formats and len(_warned_formats) < 100:
            _warned_formats.add(fmt)
            log.warning("format %r is not registered; keeping its lines raw", fmt)
        return RAW, ParsedLog(raw, metadata={})


def list_formats() -> list[dict]:
    """Every registered format as `{"name", "description", "example"}`, detection order."""
    return _FACTORY.formats()
