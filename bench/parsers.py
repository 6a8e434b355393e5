"""Parser throughput: `parse_line` lines/s per format, mixed, and plain `json.loads` beside it.

Run as `python -m bench.parsers [--lines N]`. Lines are generated in memory from a fixed
seed, so two runs parse the same text. Target: >= 50,000 lines/s per built-in format on
one core, detection included.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Iterable

from parsers import ParserFactory, build_custom_parsers, parse_line

TARGET = 50_000
SEED = 20240501
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LEVELS = ("debug", "info", "info", "info", "warn", "error")
APPS = ("api", "web", "billing", "auth", "worker", "scheduler")
HOSTS = ("web-1", "web-2", "db-1.internal", "ip-10-0-3-17", "worker-7")
PATHS = ("/", "/index.html", "/api/v1/users/42", "/static/app.js", "/search?q=a%20b&page=2")
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
    "curl/8.5.0",
    'Mozilla/5.0 (compatible; \\"Bot\\"/2.1; +http://example.com/bot.html)',
    "-",
)
WORDS = ("request", "done", "user", "login", "failed", "cache", "miss", "retry", "timeout", "slow")


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(2, 8)))


def _iso(rng: random.Random) -> str:
    day, hour, minute, second = (rng.randint(a, b) for a, b in ((1, 28), (0, 23), (0, 59), (0, 59)))
    return f"2024-05-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{rng.randint(0, 999):03d}Z"


def json_line(rng: random.Random) -> str:
    """A structured-logging line as a Python or Node service writes it."""
    record = {
        "timestamp": _iso(rng),
        "level": rng.choice(LEVELS),
        "message": _sentence(rng),
        "service": rng.choice(APPS),
        "host": rng.choice(HOSTS),
        "request_id": f"{rng.getrandbits(64):016x}",
        "duration_ms": rng.randint(1, 5000),
        "user": {"id": rng.randint(1, 10**6), "plan": rng.choice(("free", "pro"))},
    }
    return json.dumps(record)


def apache_line(rng: random.Random) -> str:
    """A Combined Log Format line (one in four is Common Log Format)."""
    client = rng.choice((f"203.0.113.{rng.randint(1, 254)}", "2001:db8::1", "crawler.example.net"))
    stamp = (
        f"{rng.randint(1, 28):02d}/{rng.choice(MONTHS)}/2024:"
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} -0700"
    )
    method = rng.choice(("GET", "GET", "POST", "HEAD"))
    status = rng.choice((200, 200, 200, 304, 404, 500))
    size = rng.choice((str(rng.randint(0, 50000)), "-"))
    head = f'{client} - - [{stamp}] "{method} {rng.choice(PATHS)} HTTP/1.1" {status} {size}'
    if rng.random() < 0.25:
        return head
    return f'{head} "https://example.com/" "{rng.choice(AGENTS)}"'


def syslog5424_line(rng: random.Random) -> str:
    """An RFC 5424 line, half of them with structured data."""
    sd = rng.choice(("-", f'[origin ip="10.0.0.{rng.randint(1, 254)}"][meta sequenceId="7"]'))
    return (
        f"<{rng.randint(0, 191)}>1 {_iso(rng)} {rng.choice(HOSTS)} {rng.choice(APPS)}"
        f" {rng.randint(100, 99999)} ID{rng.randint(1, 99)} {sd} {_sentence(rng)}"
    )


def syslog3164_line(rng: random.Random) -> str:
    """A BSD syslog line; half carry PRI, most carry a pid."""
    pri = f"<{rng.randint(0, 191)}>" if rng.random() < 0.5 else ""
    pid = f"[{rng.randint(1, 65535)}]" if rng.random() < 0.8 else ""
    return (
        f"{pri}{rng.choice(MONTHS)} {rng.randint(1, 28):2d} {rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} {rng.choice(HOSTS)}"
        f" {rng.choice(('sshd', 'CRON', 'kernel', 'postfix/smtpd'))}{pid}: {_sentence(rng)}"
    )


def logfmt_line(rng: random.Random) -> str:
    """A logfmt line as a Go service or Heroku's router writes it."""
    return (
        f'ts={_iso(rng)} level={rng.choice(LEVELS)} msg="{_sentence(rng)}"'
        f" app={rng.choice(APPS)} method=GET path={rng.choice(PATHS)}"
        f" status={rng.choice((200, 404, 500))} duration={rng.randint(1, 900)}ms"
    )


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "json": json_line,
    "apache": apache_line,
    "syslog5424": syslog5424_line,
    "syslog3164": syslog3164_line,
    "logfmt": logfmt_line,
}


def rate(lines: list[str], parse: Callable[[str], object]) -> float:
    """Lines per second of `parse` over `lines`, single-threaded, best of two runs."""
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        for line in lines:
            parse(line)
        best = min(best, time.perf_counter() - start)
    return len(lines) / best


def misdetected(lines: Iterable[str], expected: str) -> int:
    """How many lines `parse_line` did not report as `expected`."""
    return sum(1 for line in lines if parse_line(line)[0] != expected)


def main() -> None:
    """Generate, time, print one row per format plus mixed and the json.loads reference."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--lines", type=int, default=200_000, help="lines per format")
    count = args.parse_args().lines
    rng = random.Random(SEED)
    corpus = {name: [make(rng) for _ in range(count)] for name, make in GENERATORS.items()}

    print(f"{'format':<14}{'lines/s':>12}  note")
    failed = []
    for name, lines in corpus.items():
        lines_per_s = rate(lines, parse_line)
        wrong = misdetected(lines, name)
        status = "ok" if lines_per_s >= TARGET and not wrong else "BELOW TARGET"
        if status != "ok":
            failed.append(name)
        print(f"{name:<14}{lines_per_s:>12,.0f}  {status}; {wrong} lines misdetected")

    mixed = [line for lines in corpus.values() for line in lines]
    rng.shuffle(mixed)
    print(f"{'mixed':<14}{rate(mixed, parse_line):>12,.0f}  all five formats, shuffled")

    custom = ParserFactory()
    custom.add_parser(
        build_custom_parsers(
            json.dumps([{"name": "app", "pattern": r"^(?P<level>[A-Z]+) (?P<message>.*)$"}])
        )[0]
    )
    plain = [f"{rng.choice(LEVELS).upper()} {_sentence(rng)}" for _ in range(count)]
    print(f"{'regex (custom)':<14}{rate(plain, custom.parse):>12,.0f}  informational")

    reference = rate(corpus["json"], json.loads)
    ratio = rate(corpus["json"], parse_line) / reference
    note = f"reference; json parse_line/json.loads = {ratio:.2f}"
    print(f"{'json.loads':<14}{reference:>12,.0f}  {note}")
    if failed:
        raise SystemExit(f"below {TARGET:,} lines/s or misdetected: {', '.join(failed)}")


if __name__ == "__main__":
    main()
