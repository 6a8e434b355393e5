"""logfmt: quoting, bare keys, aliases, and sentences that only look like pairs."""

from __future__ import annotations

import pytest

from parsers import parse_line
from parsers.logfmt import LogfmtParser
from tests.parsers.expect import check, utc

CASES = [
    (
        'level=info msg="hello world" key=value ts=2024-01-01T00:00:00Z',
        {
            "message": "hello world",
            "level": "INFO",
            "timestamp": utc(2024, 1, 1),
            "metadata": {"key": "value"},
        },
    ),
    (
        # Heroku's router: the level is `at`; `host` is a source alias.
        'at=error code=H12 desc="Request timeout" method=GET path="/" host=myapp.herokuapp.com'
        ' request_id=8601b555 fwd="204.204.204.204" dyno=web.1 status=503 bytes=0',
        {
            "level": "ERROR",
            "source": "myapp.herokuapp.com",
            "meta": {"code": "H12", "desc": "Request timeout", "path": "/", "status": "503"},
        },
    ),
    (
        # logrus's text formatter quotes time and escapes inner quotes.
        'time="2024-05-01T12:00:00+02:00" level=warning msg="disk \\"sda\\" almost full"'
        " component=storage",
        {
            "timestamp": utc(2024, 5, 1, 10),
            "level": "WARN",
            "message": 'disk "sda" almost full',
            "metadata": {"component": "storage"},
        },
    ),
    (
        "level=debug msg=starting dry_run workers=4",
        {"message": "starting", "metadata": {"dry_run": True, "workers": "4"}},
    ),
    (
        "msg=x empty= other=1",
        {"metadata": {"empty": "", "other": "1"}},
    ),
    (
        'msg="line one\\nline two\\ttabbed \\\\ backslash \\q kept" level=info',
        {"message": "line one\nline two\ttabbed \\ backslash \\q kept"},
    ),
    (
        "msg=sized status=200 size=12.5 ok=true",
        {"metadata": {"status": "200", "size": "12.5", "ok": "true"}},
    ),
    (
        "ts=1714564800 msg=epoch level=info",
        {"timestamp": utc(2024, 5, 1, 12)},
    ),
    (
        "ts=yesterday msg=when level=info",
        {"timestamp": None, "meta": {"timestamp_raw": "yesterday"}},
    ),
    (
        "level=loud msg=what",
        {"level": None, "meta": {"level_raw": "loud"}},
    ),
    (
        "lvl=eror msg=x",
        {"level": "ERROR"},
    ),
    (
        "severity=critical log=oom",
        {"level": "CRITICAL", "message": "oom"},
    ),
    (
        # `service` comes before `logger` in the alias order, wherever it sits in the line.
        "logger=db.pool msg=exhausted level=warn service=api",
        {"application": "api", "meta": {"logger": "db.pool"}},
    ),
    (
        "app=web hostname=web-1 status=200",
        {
            "message": "app=web hostname=web-1 status=200",
            "source": "web-1",
            "application": "web",
            "metadata": {"status": "200"},
        },
    ),
    (
        # `at` that is not a level name stays where it was.
        "at=start msg=boot worker=3",
        {"level": None, "metadata": {"at": "start", "worker": "3"}},
    ),
    (
        "level=info at=error msg=both",
        {"level": "INFO", "metadata": {"at": "error"}},
    ),
    (
        'user=zoë city="São Paulo" msg=ünïcode',
        {"metadata": {"user": "zoë", "city": "São Paulo"}},
    ),
    (
        'query="a=1&b=2" msg=ok filter=x=y',
        {"metadata": {"query": "a=1&b=2", "filter": "x=y"}},
    ),
    (
        "http.status=200 k8s/pod=web-1 msg=dotted",
        {"metadata": {"http.status": "200", "k8s/pod": "web-1"}},
    ),
    (
        "  level=info\tmsg=spaced    k=v  ",
        {"message": "spaced", "metadata": {"k": "v"}},
    ),
    (
        'msg="" level=info',
        {"message": ""},
    ),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_logfmt_fields(line: str, expected: dict) -> None:
    fmt, parsed = parse_line(line)
    assert fmt == "logfmt"
    check(parsed, expected)


@pytest.mark.parametrize(
    "line",
    [
        "the result was x=5 ok",
        "I set a=1 and b=2 today",
        "a=1",
        'a="unterminated b=2',
        'a="x"y b=2',
        "=x a=1 b=2",
        "2024-01-01 12:00:00 INFO worker started x=1 y=2",
        "no pairs at all",
        "",
    ],
)
def test_not_logfmt(line: str) -> None:
    assert LogfmtParser().parse(line) is None
