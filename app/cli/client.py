"""The HTTP side of the client: one request with the key, answers as JSON, errors as
`CLIError` with the server's message (the API's one error shape)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:8000"


class CLIError(Exception):
    """A problem to report to the user (exit status 1, or 2 for a usage problem)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers and the body parsed as JSON (None if it is not)."""

    status: int
    headers: dict
    body: object


class Unreachable(CLIError):
    """The server did not answer (refused, reset, timed out)."""


def describe(answer: Answer) -> str:
    """The server's error as one readable line (with the fields it names)."""
    body = answer.body if isinstance(answer.body, dict) else {}
    text = f"HTTP {answer.status}: {body.get('message') or body.get('error') or 'no details'}"
    problems = body.get("fields")
    if isinstance(problems, dict):
        text += " " + "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in problems.items())
    return text


@dataclass(frozen=True)
class Client:
    """The server at `url`, with an optional key sent as `Authorization: Bearer`."""

    url: str = DEFAULT_URL
    key: str = ""
    timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CLIError(f"Not an http(s) URL: {self.url!r} (SLUICE_URL or --url)", 2)
        object.__setattr__(self, "url", self.url.rstrip("/"))

    def headers(self) -> dict[str, str]:
        out = {"Accept": "application/json", "User-Agent": "sluice-cli"}
        if self.key:
            out["Authorization"] = f"Bearer {self.key}"
        return out

    def request(
        self,
        method: str,
        path: str,
        params=None,
        body: bytes | None = None,
        headers: dict | None = None,
    ) -> Answer:
        """One request; any HTTP status is an Answer, no answer at all is Unreachable."""
        url = self.url + path + ("?" + urlencode(params, doseq=True) if params else "")
        request = urllib.request.Request(
            url, data=body, method=method, headers={**self.headers(), **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return _answer(exc.code, exc.headers, exc.read())
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"{self.url} did not answer: {reason}") from None

    def get(self, path: str, params=None) -> object:
        """GET and return the JSON body; CLIError for anything but 2xx."""
        answer = self.request("GET", path, params)
        if not 200 <= answer.status < 300:
            raise CLIError(describe(answer))
        return answer.body

    def ws_url(self, path: str, params) -> str:
        """The WebSocket URL for `path` on this server."""
        scheme = "wss" if self.url.startswith("https:") else "ws"
        rest = self.url.split("://", 1)[1]
        return f"{scheme}://{rest}{path}?{urlencode(params, doseq=True)}"


def _answer(status: int, headers, raw: bytes) -> Answer:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return Answer(status, dict(headers.items()) if headers else {}, body)
