"""RFC 5424 syslog: header, NILVALUE, structured data and its escapes, BOM, table-driven."""

from __future__ import annotations

from datetime import timedelta

import pytest

from parsers import parse_line
from parsers.syslog5424 import Syslog5424Parser
from tests.parsers.expect import check, utc

CASES = [
    (
        # RFC 5424 section 6.5, example 1.
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 -"
        " \ufeff'su root' failed for lonvick on /dev/pts/8",
        {
            "message": "'su root' failed for lonvick on /dev/pts/8",
            "timestamp": utc(2003, 10, 11, 22, 14, 15, 3000),
            "level": "CRITICAL",
            "source": "mymachine.example.com",
            "application": "su",
            "metadata": {
                "facility": 4,
                "facility_name": "auth",
                "severity": 2,
                "version": 1,
                "procid": None,
                "msgid": "ID47",
                "structured_data": None,
            },
        },
    ),
    (
        # Example 2: microseconds and a negative offset, which is kept.
        "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - -"
        " %% It's time to make the do-nuts.",
        {
            "message": "%% It's time to make the do-nuts.",
            "timestamp": utc(2003, 8, 24, 12, 14, 15, 3),
            "offset": timedelta(hours=-7),
            "level": "INFO",
            "source": "192.0.2.1",
            "application": "myproc",
            "meta": {"facility": 20, "facility_name": "local4", "procid": "8710", "msgid": None},
        },
    ),
    (
        # Example 3: structured data and a BOM before the message.
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473"
        ' iut="3" eventSource="Application" eventID="1011"] \ufeffAn application event log entry',
        {
            "message": "An application event log entry",
            "meta": {
                "structured_data": {
                    "exampleSDID@32473": {
                        "iut": "3",
                        "eventSource": "Application",
                        "eventID": "1011",
                    }
                }
            },
        },
    ),
    (
        # Example 4: two SD elements and no message at all.
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473"
        ' iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
        {
            "message": "",
            "meta": {
                "structured_data": {
                    "exampleSDID@32473": {
                        "iut": "3",
                        "eventSource": "Application",
                        "eventID": "1011",
                    },
                    "examplePriority@32473": {"class": "high"},
                }
            },
        },
    ),
    (
        "<0>1 - - - - - -",
        {
            "message": "",
            "timestamp": None,
            "level": "CRITICAL",
            "source": None,
            "application": None,
            "metadata": {
                "facility": 0,
                "facility_name": "kern",
                "severity": 0,
                "version": 1,
                "procid": None,
                "msgid": None,
                "structured_data": None,
            },
        },
    ),
    (
        '<14>1 2024-05-01T12:00:00Z h app 1 - [esc q="a\\"b" bs="c\\\\d" br="e\\]f"] done',
        {
            "message": "done",
            "meta": {"structured_data": {"esc": {"q": 'a"b', "bs": "c\\d", "br": "e]f"}}},
        },
    ),
    (
        # A backslash before any other character is literal (RFC 5424 6.3.3).
        '<14>1 2024-05-01T12:00:00Z h app 1 - [win path="C:\\temp\\new"] copied',
        {"meta": {"structured_data": {"win": {"path": "C:\\temp\\new"}}}},
    ),
    (
        '<14>1 2024-05-01T12:00:00Z h app 1 - [a x="1"][b y="2"][c] three elements',
        {
            "message": "three elements",
            "meta": {"structured_data": {"a": {"x": "1"}, "b": {"y": "2"}, "c": {}}},
        },
    ),
    (
        '<14>1 2024-05-01T12:00:00Z h app 1 - [a x="un ] bracket, spaces, ünïcode"] m',
        {"meta": {"structured_data": {"a": {"x": "un ] bracket, spaces, ünïcode"}}}},
    ),
    (
        "<191>1 2024-05-01T12:00:00.123456+02:00 h app - - - debug line",
        {
            "level": "DEBUG",
            "timestamp": utc(2024, 5, 1, 10, 0, 0, 123456),
            "offset": timedelta(hours=2),
            "meta": {"facility": 23, "facility_name": "local7", "severity": 7},
        },
    ),
    (
        # Heroku's log drain: RFC 5424 framing, a logfmt message, a dyno as PROCID.
        '<158>1 2024-05-01T12:00:00.000000+00:00 host heroku router - at=info method=GET path="/"'
        " status=200",
        {
            "message": 'at=info method=GET path="/" status=200',
            "source": "host",
            "application": "heroku",
            "meta": {"procid": "router", "severity": 6},
        },
    ),
    (
        "<11>1 2024-05-01T12:00:00Z h app 77 - - disk failed",
        {"level": "ERROR", "meta": {"severity": 3, "procid": "77"}},
    ),
    (
        "<12>1 2024-05-01T12:00:00Z h app - - - ",
        {"level": "WARN", "message": ""},
    ),
    (
        "<13>1 2003-13-45T99:00:00Z h app - - - bad clock",
        {
            "timestamp": None,
            "message": "bad clock",
            "meta": {"timestamp_raw": "2003-13-45T99:00:00Z"},
        },
    ),
    (
        # Senders that skip SD: everything after MSGID is the message.
        "<13>1 2024-05-01T12:00:00Z h app - - [worker 3] not structured data",
        {"message": "[worker 3] not structured data", "meta": {"structured_data": None}},
    ),
    (
        "<13>1 2024-05-01T12:00:00Z h app - ID1 hello world",
        {"message": "hello world", "meta": {"msgid": "ID1", "structured_data": None}},
    ),
    (
        "<13>2 2024-05-01T12:00:00Z h app - - - future version",
        {"meta": {"version": 2}},
    ),
    (
        '<13>1 2024-05-01T12:00:00Z h app - - [a x="1"][a y="2"] merged',
        {"meta": {"structured_data": {"a": {"x": "1", "y": "2"}}}},
    ),
    (
        "<13>1 2024-05-01T12:00:00Z h app - - - multi\nline message",
        {"message": "multi\nline message"},
    ),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_syslog5424_fields(line: str, expected: dict) -> None:
    fmt, parsed = parse_line(line)
    assert fmt == "syslog5424"
    check(parsed, expected)


@pytest.mark.parametrize(
    "line",
    [
        "<192>1 2024-05-01T12:00:00Z h app - - - PRI above 191",
        "<34>Oct 11 22:14:15 mymachine su: a BSD line",
        "<34>1 2024-05-01T12:00:00Z too few fields",
        "34>1 2024-05-01T12:00:00Z h app - - - no opening bracket",
        "<34>0 2024-05-01T12:00:00Z h app - - - version zero",
    ],
)
def test_not_rfc5424(line: str) -> None:
    assert Syslog5424Parser().parse(line) is None
