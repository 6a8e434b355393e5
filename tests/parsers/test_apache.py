"""Apache/Nginx access logs: clients, `-` fields, escapes and time zones, table-driven."""

from __future__ import annotations

from datetime import timedelta

import pytest

from parsers import parse_line
from parsers.apache import ApacheParser
from tests.parsers.expect import check, utc

MINUS_7 = timedelta(hours=-7)
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"

CASES = [
    (
        '127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif'
        ' HTTP/1.0" 200 2326',
        {
            "message": "GET /apache_pb.gif 200",
            "timestamp": utc(2000, 10, 10, 20, 55, 36),
            "offset": MINUS_7,
            "level": "INFO",
            "source": None,
            "application": None,
            "metadata": {
                "client": "127.0.0.1",
                "ident": "user-identifier",
                "user": "frank",
                "method": "GET",
                "path": "/apache_pb.gif",
                "protocol": "HTTP/1.0",
                "request": "GET /apache_pb.gif HTTP/1.0",
                "status": 200,
                "bytes": 2326,
                "referrer": None,
                "user_agent": None,
            },
        },
    ),
    (
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
        ' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
        {
            "meta": {
                "ident": None,
                "referrer": "http://www.example.com/start.html",
                "user_agent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
            }
        },
    ),
    (
        f'::1 - - [01/May/2024:12:00:00 +0000] "GET /health HTTP/1.1" 200 2 "-" "{UA}"',
        {"meta": {"client": "::1", "user": None, "referrer": None, "user_agent": UA}},
    ),
    (
        '2001:db8:85a3::8a2e:370:7334 - - [01/May/2024:12:00:00 +0000] "HEAD / HTTP/1.1" 200 0',
        {"message": "HEAD / 200", "meta": {"client": "2001:db8:85a3::8a2e:370:7334", "bytes": 0}},
    ),
    (
        'crawler-7.search.example.net - - [01/May/2024:12:00:00 +0000] "GET /robots.txt'
        ' HTTP/1.1" 200 68',
        {"meta": {"client": "crawler-7.search.example.net"}},
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "GET /logo.png HTTP/1.1" 304 -',
        {"level": "INFO", "meta": {"status": 304, "bytes": None}},
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "GET /missing HTTP/1.1" 404 153',
        {"message": "GET /missing 404", "level": "WARN"},
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "POST /api/orders HTTP/1.1" 500 21',
        {"level": "ERROR", "meta": {"method": "POST"}},
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "GET /slow HTTP/1.1" 503 0',
        {"level": "ERROR"},
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "GET /search?q=\\"quoted\\" HTTP/1.1"'
        " 200 512",
        {
            "message": 'GET /search?q="quoted" 200',
            "meta": {"path": '/search?q="quoted"', "request": 'GET /search?q="quoted" HTTP/1.1'},
        },
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 512 "-"'
        ' "Mozilla/5.0 (compatible; \\"Bot\\"/2.1; back\\\\slash)"',
        {"meta": {"user_agent": 'Mozilla/5.0 (compatible; "Bot"/2.1; back\\slash)'}},
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "-" 400 0 "-" "-"',
        {
            "message": "- 400",
            "level": "WARN",
            "meta": {"method": None, "path": None, "protocol": None, "request": "-"},
        },
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "\\x16\\x03\\x01\\x00\\xA5" 400 157',
        {"meta": {"request": "\\x16\\x03\\x01\\x00\\xA5", "method": None, "status": 400}},
    ),
    (
        '203.0.113.9 - - [01/May/2024:12:00:00 +0000] "" 408 0 "-" "-"',
        {"message": "408", "meta": {"request": ""}},
    ),
    (
        '198.51.100.4 - - [15/Jan/2024:23:59:59 +0530] "GET / HTTP/2.0" 200 10',
        {
            "timestamp": utc(2024, 1, 15, 18, 29, 59),
            "offset": timedelta(hours=5, minutes=30),
            "meta": {"protocol": "HTTP/2.0"},
        },
    ),
    (
        '198.51.100.4 - - [29/Feb/2024:00:00:00 +0000] "DELETE /api/x/1 HTTP/1.1" 204 0',
        {"timestamp": utc(2024, 2, 29), "offset": timedelta(0), "message": "DELETE /api/x/1 204"},
    ),
    (
        # Nginx formats often append X-Forwarded-For and timings after the agent.
        '10.0.0.5 - - [01/May/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0"'
        ' "203.0.113.50" rt=0.003',
        {"meta": {"user_agent": "curl/8.5.0", "extra": '"203.0.113.50" rt=0.003'}},
    ),
    (
        '10.0.0.5 - alice@example.com [01/May/2024:12:00:00 +0000] "PUT /files/a%20b HTTP/1.1"'
        " 201 0",
        {"meta": {"user": "alice@example.com", "path": "/files/a%20b", "method": "PUT"}},
    ),
    (
        '10.0.0.5 - - [99/Foo/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 1',
        {"timestamp": None, "meta": {"timestamp_raw": "99/Foo/2024:12:00:00 +0000"}},
    ),
    (
        '10.0.0.5 - - [01/May/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 1\r\n',
        {"message": "GET / 200"},
    ),
    (
        '10.0.0.5 - - [01/May/2024:12:00:00 +0000] "GET /a b c HTTP/1.1" 200 1',
        {"message": "GET /a b c HTTP/1.1 200", "meta": {"method": None}},
    ),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_apache_fields(line: str, expected: dict) -> None:
    fmt, parsed = parse_line(line)
    assert fmt == "apache"
    check(parsed, expected)


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" OK 2326',
        '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0"',
        '127.0.0.1 - - 10/Oct/2000:13:55:36 -0700 "GET / HTTP/1.0" 200 1',
        '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0 200 1',
        "GET /index.html 200",
    ],
)
def test_not_an_access_log(line: str) -> None:
    assert ApacheParser().parse(line) is None
