"""`sluice tail`: follow `WS /ws/logs`, reconnecting with `after=<last id>`.

The server sends every stored log with a larger id than `after` before the live ones,
in id order, so a client that remembers the last id it printed and skips ids it has
seen loses nothing and repeats nothing across a dropped connection, a restarted server
or a "dropped" notice (the server's buffer for a slow client overflowed).
"""

from __future__ import annotations

import json
import sys
import time

import simple_websocket

from app.cli import render
from app.cli.client import Client, CLIError, Unreachable

BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)


class Tail:
    """One `sluice tail` run: where it is (`last`), and how it prints."""

    def __init__(
        self,
        client: Client,
        params: dict,
        *,
        lines: int,
        json_out: bool,
        colour: bool,
        idle_timeout: float,
        out=sys.stdout,
        err=sys.stderr,
    ) -> None:
        self.client, self.params = client, params
        self.lines, self.json_out, self.colour = lines, json_out, colour
        self.idle_timeout = idle_timeout
        self.out, self.err = out, err
        self.last: int | None = None

    def note(self, text: str) -> None:
        print(f"sluice: {text}", file=self.err, flush=True)

    def emit(self, logs: list[dict]) -> None:
        """Print the logs not printed yet, in id order."""
        for log in sorted(logs, key=lambda entry: entry["id"]):
            if self.last is not None and log["id"] <= self.last:
                continue
            text = render.as_json(log) if self.json_out else render.line(log, self.colour)
            print(text, file=self.out)
            self.last = log["id"]
        self.out.flush()

    def start(self) -> None:
        """Print the newest `lines` matching logs and start after the newest log."""
        recent = self.client.get("/logs", {**self.params, "limit": max(self.lines, 1)})["logs"]
        if not recent:  # nothing matches yet: start after the newest log of any kind
            recent = self.client.get("/logs", {"limit": 1})["logs"]
            self.last = recent[0]["id"] if recent else 0
            return
        self.emit(recent[: self.lines])
        self.last = max(self.last or 0, *(log["id"] for log in recent))

    def run(self) -> None:
        """Follow until interrupted; reconnect on any loss of the connection."""
        attempt = 0
        while self.last is None:
            try:
                self.start()
            except Unreachable as exc:
                attempt = self._wait(attempt, str(exc))
        while True:
            try:
                self.follow()
                attempt = 0
            except (
                OSError,
                simple_websocket.ConnectionError,
                simple_websocket.ConnectionClosed,
                Unreachable,
            ) as exc:
                status = getattr(exc, "status_code", None)
                if status in (401, 403):
                    raise CLIError(f"The server refused the key (HTTP {status}).") from None
                attempt = self._wait(attempt, f"connection lost ({type(exc).__name__})")

    def _wait(self, attempt: int, why: str) -> int:
        delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        self.note(f"{why}; reconnecting in {delay:g}s after id {self.last}")
        time.sleep(delay)
        return attempt + 1

    def follow(self) -> None:
        """One connection: returns when the server asks for a fresh start, raises when
        the connection is lost."""
        url = self.client.ws_url("/ws/logs", {**self.params, "after": self.last})
        ws = simple_websocket.Client.connect(url, headers=self.client.headers())
        try:
            while True:
                raw = ws.receive(timeout=self.idle_timeout)
                if raw is None:  # not even a heartbeat: the connection is dead
                    raise ConnectionError("no heartbeat")
                if self.handle(json.loads(raw)):
                    return
        finally:
            ws.close()

    def handle(self, message: dict) -> bool:
        """Act on one server message; True to reconnect now."""
        kind = message.get("type")
        if kind == "logs":
            self.emit(message.get("logs") or [])
        elif kind == "filters":
            self.note(f"following {self.client.url} after id {self.last}")
        elif kind == "dropped":
            # The server skipped logs for this (slow) client: read them back by id.
            self.note(f"{message.get('count')} logs skipped by the server; catching up")
            return True
        elif kind == "stalled":
            self.note("the server's live feed is down; logs will follow when it is back")
        elif kind == "error":
            problems = message.get("fields") or message.get("error")
            raise CLIError(f"The server refused the filters: {problems}", 2)
        return False
