"""Webhook notifications: which targets are allowed, what is sent, and one attempt.

The body is JSON with a Slack-compatible `text`, so a Slack (or Mattermost, Discord
`/slack`) incoming webhook shows it as it is, and anything else reads the fields:

    {"text": "...", "alert": {"id", "name", "threshold", "window"}, "state": "firing",
     "count": 7, "window": "5m", "link": "https://logs.example/?min_level=ERROR#search",
     "samples": [<up to 10 logs, newest first>], "at": "...", "notification_id": 12}

Only http and https targets, and with ALERT_WEBHOOK_HOSTS set, only those hosts.
Redirects are not followed (a redirect could leave the allowlist): a 3xx is a failure.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from app.pipeline import jsoncodec

MAX_URL = 2000
ANSWER_CHARS = 500
STATE_WORDS = {"firing": "FIRING", "reminder": "still FIRING", "resolved": "RESOLVED"}


def allowed_hosts(setting: str) -> frozenset[str]:
    """ALERT_WEBHOOK_HOSTS (comma-separated host names) as a set; empty means any host."""
    return frozenset(h.strip().lower() for h in setting.split(",") if h.strip())


def url_problem(url, hosts: frozenset[str]) -> str | None:
    """Why `url` cannot be a webhook target, or None if it can."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return f"Give an http:// or https:// URL of at most {MAX_URL} characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "Not a URL."
    if parts.scheme not in ("http", "https"):
        return "Only http:// and https:// webhooks are allowed."
    if not parts.hostname:
        return "The URL names no host."
    if any(c.isspace() for c in url):
        return "The URL contains white space."
    if hosts and parts.hostname.lower() not in hosts:
        return f"Host {parts.hostname!r} is not in ALERT_WEBHOOK_HOSTS."
    return None


def notification_payload(
    *, alert: dict, kind: str, count: int, window: str, link: str, samples: list[dict], at: datetime
) -> dict:
    """The JSON a webhook receives for one notification (the id is added at delivery)."""
    words = STATE_WORDS[kind]
    text = (
        f"[{words}] {alert['name']}: {count} matching log{'s' if count != 1 else ''} "
        f"in the last {window} (threshold {alert['threshold']}). {link}"
    )
    if samples and kind != "resolved":
        text += f"\nNewest: {samples[0]['level']} {samples[0]['message'][:200]}"
    return {
        "text": text,
        "alert": {
            "id": alert["id"],
            "name": alert["name"],
            "threshold": alert["threshold"],
            "window": window,
        },
        "state": kind,
        "count": count,
        "window": window,
        "link": link,
        "samples": samples,
        "at": at.isoformat(),
    }


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST: the status (None if no answer), its start, an error."""

    ok: bool
    status: int | None
    answer: str
    error: str | None
    seconds: float

    def as_detail(self) -> dict:
        return {
            "ok": self.ok,
            "status": self.status,
            "answer": self.answer,
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: dict, timeout: float, idempotency_key: str) -> Attempt:
    """POST `body` as JSON to `url` once, within `timeout` seconds; 2xx is success."""
    request = urllib.request.Request(
        url,
        data=jsoncodec.dumps(body),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "sluice-alerts",
            "Idempotency-Key": idempotency_key,
        },
    )
    started = time.monotonic()
    try:
        with _opener.open(request, timeout=timeout) as response:
            answer = response.read(ANSWER_CHARS).decode("utf-8", "replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        answer = exc.read(ANSWER_CHARS).decode("utf-8", "replace") if exc.fp else ""
        return Attempt(False, exc.code, answer, f"HTTP {exc.code}", time.monotonic() - started)
    except (OSError, ValueError) as exc:  # refused, reset, timed out, DNS, bad URL
        return Attempt(False, None, "", f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    return Attempt(200 <= status < 300, status, answer, None, time.monotonic() - started)
