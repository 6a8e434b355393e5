"""RFC 3164 (BSD) syslog: PRI or not, tags and pids, and the year a stamp leaves out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from parsers import ParserFactory, parse_line
from parsers.syslog3164 import Syslog3164Parser, infer_year
from tests.parsers.expect import check, utc

NOW = utc(2024, 6, 15, 12, 0, 0)
FACTORY = ParserFactory(now=lambda: NOW)
RFC5424 = "<34>1 2003-10-11T22:14:15Z mymachine.example.com su - ID47 - 'su root' failed"

CASES = [
    (
        # RFC 3164 section 5.4, example 1.
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        {
            "message": "'su root' failed for lonvick on /dev/pts/8",
            "timestamp": utc(2023, 10, 11, 22, 14, 15),
            "level": "CRITICAL",
            "source": "mymachine",
            "application": "su",
            "metadata": {"facility": 4, "facility_name": "auth", "severity": 2},
        },
    ),
    (
        # Example 2: no tag, so everything after the host is the message.
        "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
        {
            "message": "Use the BFG!",
            "timestamp": utc(2024, 2, 5, 17, 32, 18),
            "level": "INFO",
            "source": "10.0.0.99",
            "application": None,
            "metadata": {"facility": 1, "facility_name": "user", "severity": 5},
        },
    ),
    (
        "Jun 14 10:00:00 web-1 sshd[1234]: Accepted publickey for deploy from 203.0.113.4",
        {
            "message": "Accepted publickey for deploy from 203.0.113.4",
            "timestamp": utc(2024, 6, 14, 10),
            "level": None,
            "source": "web-1",
            "application": "sshd",
            "metadata": {"pid": 1234},
        },
    ),
    (
        "Jun  1 08:05:09 web-1 CRON[99]: (root) CMD (run-parts /etc/cron.hourly)",
        {"timestamp": utc(2024, 6, 1, 8, 5, 9), "application": "CRON", "meta": {"pid": 99}},
    ),
    (
        "<22>Jun 15 11:59:59 mail postfix/smtpd[2345]: connect from unknown[203.0.113.7]",
        {
            "application": "postfix/smtpd",
            "message": "connect from unknown[203.0.113.7]",
            "meta": {"pid": 2345, "facility_name": "mail"},
        },
    ),
    (
        # Local /dev/log messages carry no hostname.
        "<13>Jun 15 11:59:59 CRON[99]: (root) CMD (true)",
        {"source": None, "application": "CRON", "message": "(root) CMD (true)"},
    ),
    (
        "<4>Jun 15 11:00:00 host kernel: [12345.678] usb 1-1: new high-speed USB device",
        {
            "level": "WARN",
            "application": "kernel",
            "message": "[12345.678] usb 1-1: new high-speed USB device",
            "meta": {"facility_name": "kern"},
        },
    ),
    (
        # RFC 3164 4.3.2: a PRI with no valid timestamp; the rest is the message.
        "<13>hello world",
        {"message": "hello world", "timestamp": None, "level": "INFO", "source": None},
    ),
    (
        # rsyslog's high-precision variant: an RFC 3339 stamp in the BSD header.
        "<30>2024-06-15T11:00:00.123+02:00 host app[7]: started",
        {
            "timestamp": utc(2024, 6, 15, 9, 0, 0, 123000),
            "offset": timedelta(hours=2),
            "source": "host",
            "application": "app",
            "meta": {"pid": 7},
        },
    ),
    (
        "Jun 15 11:00:00 fe80::1 sshd[1]: from an IPv6 host",
        {"source": "fe80::1", "application": "sshd", "message": "from an IPv6 host"},
    ),
    (
        # 18 hours ahead of now: a sender whose clock runs fast, same year.
        "Jun 16 06:00:00 host app: early",
        {"timestamp": utc(2024, 6, 16, 6)},
    ),
    (
        # Two days ahead is not tolerated: it is last year's June 17.
        "Jun 17 06:00:00 host app: last year",
        {"timestamp": utc(2023, 6, 17, 6)},
    ),
    (
        "Jun 15 11:00:00 host",
        {"source": "host", "message": "", "application": None},
    ),
    (
        "Jun 15 11:00:00 host app:",
        {"source": "host", "application": "app", "message": ""},
    ),
    (
        "<191>Jun 15 11:00:00 host app: local7 debug",
        {"level": "DEBUG", "meta": {"facility": 23, "facility_name": "local7", "severity": 7}},
    ),
    (
        "<11>Feb 30 11:00:00 host app: no such day",
        {"timestamp": None, "level": "ERROR", "meta": {"timestamp_raw": "Feb 30 11:00:00"}},
    ),
    (
        "<86>Jun 15 11:00:00 host systemd-logind[812]: New session 3 of user deploy.",
        {"application": "systemd-logind", "meta": {"pid": 812, "facility_name": "authpriv"}},
    ),
    (
        "Jun 15 11:00:00 host app: colons: inside: the message",
        {"application": "app", "message": "colons: inside: the message"},
    ),
    (
        "Jun 15 11:00:00 su: root: failed",
        {"source": None, "application": "su", "message": "root: failed"},
    ),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_syslog3164_fields(line: str, expected: dict) -> None:
    fmt, parsed = FACTORY.parse(line)
    assert fmt == "syslog3164"
    check(parsed, expected)


@pytest.mark.parametrize(
    ("now", "stamp", "expected"),
    [
        # Read just after New Year: December belongs to the year that just ended.
        (utc(2025, 1, 1, 0, 0, 30), "Dec 31 23:59:59", utc(2024, 12, 31, 23, 59, 59)),
        # Read just before New Year from a sender a minute ahead: it is next year's Jan 1.
        (utc(2024, 12, 31, 23, 59), "Jan  1 00:00:10", utc(2025, 1, 1, 0, 0, 10)),
        (utc(2025, 1, 1, 0, 5), "Jan  1 00:00:00", utc(2025, 1, 1)),
        (utc(2025, 1, 2), "Dec 30 12:00:00", utc(2024, 12, 30, 12)),
        # Three days ahead is too far into the future: it was this year's January.
        (utc(2024, 12, 30), "Jan  2 00:00:01", utc(2024, 1, 2, 0, 0, 1)),
        (utc(2025, 3, 1), "Feb 29 12:00:00", utc(2024, 2, 29, 12)),
        (utc(2027, 3, 1), "Feb 29 12:00:00", utc(2024, 2, 29, 12)),
        (utc(2024, 6, 15, 12), "Jun 15 12:00:00", utc(2024, 6, 15, 12)),
    ],
)
def test_year_inference(now: datetime, stamp: str, expected: datetime) -> None:
    parsed = Syslog3164Parser(now=lambda: now).parse(f"<13>{stamp} host app: m")
    assert parsed is not None
    assert parsed.timestamp == expected


def test_naive_now_is_taken_as_utc() -> None:
    naive = datetime(2025, 1, 1, 0, 0, 30)
    assert infer_year(naive, 12, 31, 23, 59, 59) == datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_default_now_is_the_clock() -> None:
    parsed = Syslog3164Parser().parse("<13>Jan  1 00:00:00 host app: m")
    assert parsed is not None and parsed.timestamp is not None
    assert parsed.timestamp <= datetime.now(UTC) + timedelta(days=1)


@pytest.mark.parametrize(
    "line",
    [
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - an RFC 5424 line",
        "<192>Oct 11 22:14:15 host app: PRI above 191",
        "Oct 11 2024 22:14:15 host app: year in the wrong place",
        "October 11 22:14:15 host app: month spelled out",
        "just some words",
    ],
)
def test_not_rfc3164(line: str) -> None:
    assert Syslog3164Parser(now=lambda: NOW).parse(line) is None


@pytest.mark.parametrize("fmt", [None, "syslog3164"])
def test_now_passed_per_line_anchors_the_year(fmt: str | None) -> None:
    received = utc(2025, 1, 1, 0, 0, 30)
    name, parsed = parse_line("<13>Dec 31 23:59:59 host app: late", fmt, now=received)
    assert (name, parsed.timestamp) == ("syslog3164", utc(2024, 12, 31, 23, 59, 59))
    # Formats that carry their year ignore `now`.
    assert parse_line(RFC5424, now=received)[1].timestamp == utc(2003, 10, 11, 22, 14, 15)
