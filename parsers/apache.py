"""Apache and Nginx access logs: Common and Combined Log Format."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

from parsers.base import LogParser, ParsedLog
from parsers.clock import MONTHS, fixed_zone

# A quoted field: anything but a quote, or a backslash escape (Apache writes `\"` and `\\`).
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_LINE = re.compile(
    r"(\S+) (\S+) (\S+) \[([^\]]*)\] "
    + _QUOTED
    + r" (\d{3}) (\d+|-)"
    + r"(?: "
    + _QUOTED
    + " "
    + _QUOTED
    + r")?(?: (.*))?\s*\Z",
    re.DOTALL,
)
_REQUEST = re.compile(r"([A-Za-z][A-Za-z_-]*) (\S+)(?: ([A-Za-z]+/[0-9.]+))?\Z")
_TIME = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?: ([+-])(\d{2})(\d{2}))?\Z"
)
_ESCAPE = re.compile(r'\\(["\\])')


class ApacheParser(LogParser):
    """Parse Common/Combined Log Format; 5xx is ERROR, 4xx WARN, anything else INFO."""

    name = "apache"
    description = "Apache/Nginx access log, Common or Combined Log Format."
    example = (
        '203.0.113.7 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
        ' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
    )

    def parse(self, raw: str) -> ParsedLog | None:
        """Return the request's fields, or None when the line is not an access-log line."""
        # Cheap refusal before the regex: every access-log line has `] "`.
        if '] "' not in raw:
            return None
        match = _LINE.match(raw)
        if match is None:
            return None
        client, ident, user, when, request, status, size, referrer, agent, extra = match.groups()
        request = _unescape(request)
        status_code = int(status)
        metadata = {
            "client": client,
            "ident": None if ident == "-" else ident,
            "user": None if user == "-" else user,
            "method": None,
            "path": None,
            "protocol": None,
            "request": request,
            "status": status_code,
            "bytes": None if size == "-" else int(size),
            "referrer": _optional(referrer),
            "user_agent": _optional(agent),
        }
        parts = _REQUEST.match(request)
        if parts is not None:
            method, path, protocol = parts.groups()
            metadata["method"] = method
            metadata["path"] = path
            metadata["protocol"] = protocol
            message = f"{method} {path} {status}"
        else:
            # `-`, an empty request (Nginx on a timeout) or a TLS probe's bytes.
            message = f"{request} {status}" if request else status
        if extra and not extra.isspace():
            # Nginx formats often append fields (forwarded-for, timings) after the agent.
            metadata["extra"] = extra.strip()
        timestamp = _timestamp(when)
        if timestamp is None:
            metadata["timestamp_raw"] = when
        return ParsedLog(message, timestamp, _level(status_code), None, None, metadata)


def _level(status: int) -> str:
    if status >= 500:
        return "ERROR"
    if status >= 400:
        return "WARN"
    return "INFO"


def _unescape(text: str) -> str:
    # `\xHH` stays escaped on purpose: decoding it would put control bytes back in the UI.
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def _optional(text: str | None) -> str | None:
    if text is None or text == "-":
        return None
    return _unescape(text)


def _timestamp(text: str) -> datetime | None:
    """`10/Oct/2000:13:55:36 -0700` -> aware datetime in that offset (UTC if none given)."""
    # A valid stamp is at most 26 characters; the length check keeps junk out of the cache.
    return _cached_timestamp(text) if len(text) <= 26 else None


# A busy server writes the same second on many consecutive lines; datetimes are immutable.
@lru_cache(maxsize=1024)
def _cached_timestamp(text: str) -> datetime | None:
    match = _TIME.match(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
    number = MONTHS.get(month.capitalize())
    if number is None:
        return None
    zone = UTC if sign is None else fixed_zone(sign + off_h + off_m)
    if zone is None:
        return None
    try:
        return datetime(
            int(year),
            number,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=zone,
        )
    except ValueError:
        return None
