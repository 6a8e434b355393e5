"""`sluice`, the command-line client, run as the console script against the real system
(gunicorn, Celery worker and beat), plus its pure parts."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from app.cli import render, send
from app.cli.client import Client
from app.cli.main import build_parser, filter_params
from tests.helpers import count_logs, wait_for
from tests.stack import ROOT, Stack

SLUICE = Path(sys.executable).parent / "sluice"


def sluice(*args, **kwargs) -> subprocess.CompletedProcess:
    """Run the console script to completion."""
    return subprocess.run(
        [str(SLUICE), *args], capture_output=True, env=_env(), timeout=120, **kwargs
    )


def _env() -> dict:
    # This checkout's code, whichever checkout the shared venv was installed from.
    return {**os.environ, "PYTHONPATH": str(ROOT), "SLUICE_URL": "", "SLUICE_KEY": ""}


# ------------------------------------------------------------------ pure parts


def test_the_console_script_is_installed():
    assert SLUICE.exists(), "run `make test` (or pip install -e . --no-deps) to install it"
    result = sluice("--help")
    assert result.returncode == 0
    assert b"tail" in result.stdout and b"query" in result.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["tail"], {}),
        (
            ["tail", "--min-level", "warn", "--source", "a", "--source", "b"],
            {"min_level": "WARN", "source": ["a", "b"]},
        ),
        (
            ["tail", "--app", "billing", "--contains", "card", "-q", "declined"],
            {"application": ["billing"], "contains": "card", "q": "declined"},
        ),
        (
            [
                "query",
                "payment failed",
                "--level",
                "error",
                "--meta",
                "user_id=7",
                "--meta",
                "user_id=8",
            ],
            {"q": "payment failed", "level": ["ERROR"], "meta.user_id": ["7", "8"]},
        ),
    ],
)
def test_filter_flags_are_the_query_parameters(argv, expected):
    assert filter_params(build_parser().parse_args(argv)) == expected


def test_a_bad_meta_flag_is_a_usage_error():
    result = sluice("query", "--meta", "novalue")
    assert result.returncode == 2 and b"KEY=VALUE" in result.stderr


def test_render_colours_by_level_and_escapes_terminal_controls():
    log = {
        "timestamp": "2026-12-02T10:00:00+00:00",
        "level": "ERROR",
        "source": "web-1",
        "application": "billing",
        "message": "boom \x1b[2J gone",
        "metadata": {"k": 1},
    }
    plain = render.line(log)
    assert plain == ('2026-12-02T10:00:00+00:00 ERROR    web-1/billing boom \\x1b[2J gone {"k":1}')
    coloured = render.line(log, colour=True)
    assert "\x1b[31mERROR" in coloured and "\x1b[2J" not in coloured


def test_batches_split_by_lines_and_bytes_and_skip_blank_lines():
    data = b"a\r\n\nb\n  \nc\nd"
    assert [b for b, _ in send.batches(io.BytesIO(data), 2, 10**6)] == [[b"a", b"b"], [b"c", b"d"]]
    assert [b for b, _ in send.batches(io.BytesIO(b"xxxx\nyyyy\nz"), 100, 5)] == [
        [b"xxxx"],
        [b"yyyy"],
        [b"z"],
    ]
    assert sum(n for _, n in send.batches(io.BytesIO(data), 2, 10**6)) == len(data)


def test_app_lines_become_json_logs_of_that_application():
    body, kind = send.body_for(
        [
            b'{"message": "m", "level": "warn"}',
            b"plain line",
            b'{"message": "x", "application": "own"}',
            b"[1]",
        ],
        "billing",
    )
    assert kind == "application/x-ndjson"
    assert [json.loads(line) for line in body.split(b"\n")] == [
        {"message": "m", "level": "warn", "application": "billing"},
        {"message": "plain line", "application": "billing"},
        {"message": "x", "application": "own"},
        {"message": "[1]", "application": "billing"},
    ]


class Flaky:
    """A loopback stand-in for the server that refuses the first `refusals` requests."""

    def __init__(self, refusals: int) -> None:
        self.seen: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.seen.append((self.headers["Idempotency-Key"], self.headers["Authorization"]))
                refused = len(outer.seen) <= refusals
                status = 503 if refused else 202
                lines = body.count(b"\n") + 1
                answer = json.dumps(
                    {"error": "redis_unavailable", "message": "down"}
                    if refused
                    else {"accepted": lines, "ids": [], "rejected": []}
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if refused:
                    self.send_header("Retry-After", "0.1")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def test_send_retries_a_batch_with_the_same_idempotency_key():
    flaky = Flaky(refusals=2)
    totals = send.run(
        Client(flaky.url, "k3y"),
        app=None,
        fmt=None,
        batch=2,
        sync=False,
        retries=3,
        stdin=io.BytesIO(b"a\nb\nc\n"),
        err=io.StringIO(),
    )
    flaky.server.shutdown()
    assert (totals.lines, totals.accepted) == (3, 3)
    keys = [key for key, _ in flaky.seen]
    assert len(keys) == 4 and keys[0] == keys[1] == keys[2] != keys[3]
    assert {auth for _, auth in flaky.seen} == {"Bearer k3y"}


# ------------------------------------------------------------------ against the system


def _stack(settings, workdir: Path) -> Stack:
    workdir.mkdir(exist_ok=True)
    return Stack(
        settings.with_overrides(drain_budget=1.0, drain_interval=0.5, claim_idle_ms=5000), workdir
    )


@pytest.fixture
def stacks(settings, tmp_path):
    made = []

    def make(name: str) -> Stack:
        made.append(_stack(settings, tmp_path / name))
        return made[-1]

    yield make
    for s in made:
        s.stop_all()


def _post(url: str, messages: list[str]) -> None:
    body = [{"message": m, "source": "cli-test"} for m in messages]
    response = requests.post(f"{url}/data/", json=body, timeout=10)
    assert response.status_code == 201, response.text


class Running:
    """`sluice tail` as a subprocess; its stdout lines collected in the background."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(SLUICE), "tail", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        self.lines: list[dict] = []
        self.errors: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True).start()

    def _read(self, stream, out: bool) -> None:
        for raw in stream:
            (self.lines.append(json.loads(raw)) if out else self.errors.append(raw.decode()))

    def messages(self) -> list[str]:
        return [log["message"] for log in self.lines]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)


@pytest.mark.system
def test_tail_survives_a_restart_of_the_web_process_without_loss_or_repeat(stacks):
    """The tail follows one web process; another takes logs while the first is killed and
    started again; once the tail is back, everything is printed exactly once, in order."""
    followed = stacks("followed").start("web", "worker", "beat")
    ingest = stacks("ingest").start("web")
    tail = Running("--url", followed.url, "--lines", "0", "--source", "cli-test")
    try:
        wait_for(lambda: any("following" in e for e in tail.errors), 20)
        before = [f"before {i}" for i in range(20)]
        _post(ingest.url, before)
        wait_for(lambda: tail.messages() == before, 10)

        followed.signal("web", signal.SIGKILL)  # the connection is cut
        followed.procs.pop("web")
        meanwhile = [f"meanwhile {i}" for i in range(50)]
        for chunk in range(5):
            _post(ingest.url, meanwhile[chunk * 10 : chunk * 10 + 10])
        wait_for(lambda: any("connection lost" in e for e in tail.errors), 10)
        followed.start("web")
        after = [f"after {i}" for i in range(20)]
        wait_for(lambda: sum("following" in e for e in tail.errors) >= 2, 20)
        _post(ingest.url, after)
        expected = before + meanwhile + after
        wait_for(lambda: len(tail.lines) >= len(expected), 20)
        time.sleep(1)  # anything repeated would arrive now
        assert tail.messages() == expected
        ids = [log["id"] for log in tail.lines]
        assert ids == sorted(set(ids))
    finally:
        tail.stop()


@pytest.mark.system
def test_send_then_query_round_trips_ten_thousand_lines(stacks, db, tmp_path):
    stack = stacks("roundtrip").start("web", "worker", "beat")
    word = f"roundtrip{uuid.uuid4().hex[:8]}"
    lines = [f"{word} line {i} of the batch" for i in range(10_000)]
    path = tmp_path / "input.log"
    path.write_text("\n".join(lines) + "\n")
    with path.open("rb") as stdin:
        sent = sluice("send", "--url", stack.url, stdin=stdin)
    assert sent.returncode == 0, sent.stderr
    assert b"10000 lines sent, 10000 accepted, 0 rejected" in sent.stderr
    wait_for(lambda: count_logs(db, "message LIKE :w", w=f"{word}%") == 10_000, 60)

    found = sluice("query", word, "--since", "1h", "--json", "--url", stack.url)
    assert found.returncode == 0, found.stderr
    logs = [json.loads(line) for line in found.stdout.splitlines()]
    assert len(logs) == 10_000
    assert sorted(log["message"] for log in logs) == sorted(lines)
    assert len({log["id"] for log in logs}) == 10_000
    stamps = [log["timestamp"] for log in logs]
    assert stamps == sorted(stamps, reverse=True)  # newest first, across pages

    text = sluice("query", word, "--limit", "3", "--color", "never", "--url", stack.url)
    assert len(text.stdout.splitlines()) == 3
    assert all(f" {word} line " in line for line in text.stdout.decode().splitlines())


@pytest.mark.system
def test_send_with_an_app_and_status(stacks, db):
    stack = stacks("app").start("web", "worker", "beat")
    word = f"apptest{uuid.uuid4().hex[:8]}"
    sent = sluice(
        "send",
        "--url",
        stack.url,
        "--app",
        "billing",
        "--sync",
        input=f'{word} one\n{{"message": "{word} two", "level": "error"}}\n'.encode(),
    )
    assert sent.returncode == 0, sent.stderr
    found = sluice("query", word, "--app", "billing", "--json", "--url", stack.url)
    logs = sorted((json.loads(x) for x in found.stdout.splitlines()), key=lambda x: x["id"])
    assert [(x["message"], x["level"], x["application"]) for x in logs] == [
        (f"{word} one", "INFO", "billing"),
        (f"{word} two", "ERROR", "billing"),
    ]

    status = sluice("status", "--url", stack.url)
    assert status.returncode == 0, status.stderr
    assert b"health (HTTP 200)" in status.stdout and b"queue_name" in status.stdout
    down = sluice("status", "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and b"did not answer" in down.stderr


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_send_shows_a_progress_bar_on_a_terminal_only():
    flaky = Flaky(refusals=0)
    data = b"".join(b"line %d\n" % i for i in range(10))
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sluice-progress-{uuid.uuid4().hex}"
    path.write_bytes(data)
    try:
        for err, shown in ((Terminal(), True), (io.StringIO(), False)):
            with path.open("rb") as stdin:
                send.run(
                    Client(flaky.url),
                    app=None,
                    fmt=None,
                    batch=5,
                    sync=False,
                    retries=0,
                    stdin=stdin,
                    err=err,
                )
            text = err.getvalue()
            assert ("100% 10 lines sent, 10 accepted" in text) is shown, text
            assert ("[###" in text) is shown
    finally:
        path.unlink()
        flaky.server.shutdown()
