"""`sluice send`: ship lines from stdin in batches, retrying each with its own
`Idempotency-Key` (a batch retried after a lost answer is stored once where the server
honours the key), with a progress bar when stderr is a terminal.

Lines go as `text/plain`, parsed by the server (`--format` skips detection). With
`--app`, each line is sent as a JSON log of that application: a JSON object line keeps
its fields (and gets the application if it names none); any other line is its message.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field

from app.cli.client import Client, CLIError, Unreachable, describe

RETRY_STATUSES = {429, 500, 502, 503, 504}
BACKOFF_CAP = 30.0


@dataclass
class Totals:
    """What a run sent, for the summary line."""

    lines: int = 0
    accepted: int = 0
    rejected: list = field(default_factory=list)
    bytes_read: int = 0


def batches(stream, size: int, max_bytes: int):
    """Non-blank lines of a binary stream, in lists of at most `size` lines and about
    `max_bytes` bytes, with the bytes read for each."""
    batch, held, read = [], 0, 0
    for raw in stream:
        read += len(raw)
        line = raw.rstrip(b"\n").removesuffix(b"\r")
        if not line.strip():
            continue
        batch.append(line)
        held += len(line) + 1
        if len(batch) >= size or held >= max_bytes:
            yield batch, read
            batch, held, read = [], 0, 0
    if batch or read:
        yield batch, read


def body_for(lines: list[bytes], app: str | None) -> tuple[bytes, str]:
    """The request body and its Content-Type for these lines."""
    if not app:
        return b"\n".join(lines), "text/plain; charset=utf-8"
    out = []
    for line in lines:
        text = line.decode("utf-8", "replace")
        try:
            item = json.loads(text)
        except ValueError:
            item = None
        if isinstance(item, dict):
            item.setdefault("application", app)
        else:
            item = {"message": text, "application": app}
        out.append(json.dumps(item, ensure_ascii=False).encode())
    return b"\n".join(out), "application/x-ndjson"


def post_batch(
    client: Client,
    path: str,
    params: dict,
    body: bytes,
    content_type: str,
    key: str,
    retries: int,
    note,
) -> dict:
    """POST one batch until it is answered (2xx, or 422: nothing in it was valid);
    retry refusals and outages with the same Idempotency-Key."""
    headers = {"Content-Type": content_type, "Idempotency-Key": key}
    for attempt in range(retries + 1):
        try:
            answer = client.request("POST", path, params, body, headers)
        except Unreachable as exc:
            answer, why = None, str(exc)
        else:
            if 200 <= answer.status < 300:
                return answer.body
            if answer.status == 422:  # every line refused: report them, go on
                return {"accepted": 0, "rejected": answer.body.get("rejected", [])}
            if answer.status not in RETRY_STATUSES:
                raise CLIError(describe(answer))
            why = describe(answer)
        if attempt == retries:
            raise CLIError(f"gave up after {retries + 1} attempts: {why}")
        delay = _retry_after(answer) or min(0.5 * 2**attempt, BACKOFF_CAP)
        note(f"{why}; retrying in {delay:g}s")
        time.sleep(delay)
    raise AssertionError("unreachable")


def _retry_after(answer) -> float | None:
    try:
        return float(answer.headers.get("Retry-After")) if answer else None
    except (TypeError, ValueError):
        return None


class Progress:
    """A one-line bar on a terminal (bytes of a file, or lines of a pipe)."""

    def __init__(self, err, total_bytes: int | None) -> None:
        self.err, self.total = err, total_bytes
        self.on = err.isatty()

    def show(self, totals: Totals) -> None:
        if not self.on:
            return
        text = f"{totals.lines:,} lines sent, {totals.accepted:,} accepted"
        if self.total:
            done = min(totals.bytes_read / self.total, 1.0)
            bar = "#" * int(done * 30)
            text = f"[{bar:<30}] {done:4.0%} {text}"
        self.err.write("\r" + text + "\x1b[K")
        self.err.flush()

    def end(self) -> None:
        if self.on:
            self.err.write("\n")


def run(
    client: Client,
    *,
    app: str | None,
    fmt: str | None,
    batch: int,
    sync: bool,
    retries: int,
    stdin=None,
    err=sys.stderr,
) -> Totals:
    """Send every line of `stdin`; return the totals."""
    stdin = stdin or sys.stdin.buffer
    if app and fmt:
        raise CLIError(
            "--app sends each line as a message of that application; --format "
            "asks the server to parse lines: give one of them",
            2,
        )
    path = "/data/" if sync else "/data/fast"
    params = {"format": fmt} if fmt else None
    run_id = uuid.uuid4().hex
    try:
        size = os.fstat(stdin.fileno()).st_size
    except (OSError, ValueError, AttributeError):
        size = None
    progress, totals = Progress(err, size or None), Totals()

    def note(text: str) -> None:
        progress.end()
        print(f"sluice: {text}", file=err, flush=True)

    for number, (lines, read) in enumerate(batches(stdin, batch, 4 * 1024 * 1024)):
        totals.bytes_read += read
        if lines:
            body, content_type = body_for(lines, app)
            answer = post_batch(
                client,
                path,
                params,
                body,
                content_type,
                f"sluice-send-{run_id}-{number}",
                retries,
                note,
            )
            totals.accepted += answer.get("accepted", answer.get("stored", 0))
            offset = totals.lines
            totals.rejected += [
                {**r, "index": r["index"] + offset} for r in answer.get("rejected", [])
            ]
            totals.lines += len(lines)
        progress.show(totals)
    progress.end()
    return totals
