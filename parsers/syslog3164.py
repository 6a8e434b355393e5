"""RFC 3164 (BSD) syslog: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`, PRI optional."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from parsers.base import LogParser, ParsedLog
from parsers.clock import MONTHS, utc_now
from parsers.fields import parse_timestamp
from parsers.syslogpri import MAX_PRI, priority_fields

_PRI = re.compile(r"<(\d{1,3})>")
# What follows PRI in RFC 5424; such a line belongs to that parser, never to this one.
_VERSION_5424 = re.compile(r"[1-9]\d{0,2} ")
_MONTH = "|".join(MONTHS)
# `Oct 11 22:14:15 ` or `Oct  1 22:14:15 `; rsyslog's high-precision variant writes
# an RFC 3339 timestamp in the same place, so that is accepted too.
_STAMP = re.compile(
    r"(?:(" + _MONTH + r") +(\d{1,2}) (\d\d):(\d\d):(\d\d)|(\d{4}-\d\d-\d\dT\S+))(?: |\Z)"
)
# HOSTNAME is optional in practice (local /dev/log messages omit it); it never ends in ':'
# so `su: msg` is a tag, not a host. TAG may carry `[pid]`.
_TAGGED = re.compile(r"(?:(\S*[^\s:]) )?([^\s:\[\]]+)(?:\[(\d+)\])?:(?: |\Z)(.*)\Z", re.DOTALL)
_UNTAGGED = re.compile(r"(\S+)(?: (.*))?\Z", re.DOTALL)
FUTURE_SLACK = timedelta(days=1)
# Feb 29 can be up to eight years back (2096 -> 2104 skips a leap year).
YEARS_BACK = 8


class Syslog3164Parser(LogParser):
    """Parse BSD syslog lines with or without PRI; the missing year is inferred from `now`."""

    name = "syslog3164"
    description = "Syslog, RFC 3164 (BSD), with or without <PRI>; timestamps taken as UTC."
    example = "<34>Oct 11 22:14:15 mymachine su[2093]: 'su root' failed for lonvick on /dev/pts/8"

    def __init__(self, now: Callable[[], datetime] = utc_now) -> None:
        # Injectable so tests can pin "now" around New Year.
        self.now = now

    def parse(self, raw: str) -> ParsedLog | None:
        """Return the header fields and message, or None when the line is not RFC 3164."""
        return self.parse_at(raw, None)

    def parse_at(self, raw: str, now: datetime | None) -> ParsedLog | None:
        """`parse` with the year inferred relative to `now` (None: the parser's clock)."""
        level = None
        metadata: dict = {}
        pos = 0
        if raw.startswith("<"):
            pri = _PRI.match(raw)
            if pri is None or int(pri.group(1)) > MAX_PRI:
                return None
            level, metadata = priority_fields(int(pri.group(1)))
            pos = pri.end()
        stamp = _STAMP.match(raw, pos)
        if stamp is None:
            if pos == 0 or _VERSION_5424.match(raw, pos):
                return None
            # RFC 3164 4.3.2: a PRI with no valid timestamp is still a message; all of it
            # after the PRI is the content.
            return ParsedLog(raw[pos:], None, level, None, None, metadata)
        timestamp = self._timestamp(stamp.groups(), now)
        if timestamp is None:
            metadata["timestamp_raw"] = stamp.group(0).strip()
        source, application, message = _split_content(raw[stamp.end() :], metadata)
        return ParsedLog(message, timestamp, level, source, application, metadata)

    def _timestamp(self, groups: tuple, now: datetime | None) -> datetime | None:
        month, day, hour, minute, second, iso = groups
        if iso is not None:
            return parse_timestamp(iso)
        if now is None:
            now = self.now()
        return infer_year(now, MONTHS[month], int(day), int(hour), int(minute), int(second))


def _split_content(content: str, metadata: dict) -> tuple[str | None, str | None, str]:
    """`host tag[pid]: msg` -> (host, tag, msg); sets metadata `pid` when there is one."""
    tagged = _TAGGED.match(content)
    if tagged is not None:
        host, tag, pid, message = tagged.groups()
        if pid is not None:
            metadata["pid"] = int(pid)
        return host, tag, message
    # No `tag:`: RFC 3164's own `10.0.0.99 Use the BFG!` is a host and a free message.
    untagged = _UNTAGGED.match(content)
    if untagged is None:
        return None, None, content
    host, message = untagged.groups()
    return host, None, message or ""


def infer_year(
    now: datetime, month: int, day: int, hour: int, minute: int, second: int
) -> datetime | None:
    """The UTC datetime for a yearless stamp: the latest one not more than a day after now.

    Of the candidates no later than now + 1 day, the latest is also the nearest to now, so
    `Dec 31 23:59:59` read on Jan 1 lands in the old year and `Jan 1 00:00:01` read a
    second before midnight on Dec 31 lands in the new one.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    limit = now + FUTURE_SLACK
    for year in range(now.year + 1, now.year - YEARS_BACK - 1, -1):
        try:
            candidate = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            # Feb 29 outside a leap year, or a day/hour no calendar has.
            continue
        if candidate <= limit:
            return candidate
    return None
