"""`sluice query`: page through `GET /logs` with the cursor and print every log."""

from __future__ import annotations

import sys

from app.cli import render
from app.cli.client import Client, CLIError, describe

PAGE = 1000


def run(
    client: Client, params: dict, *, limit: int | None, json_out: bool, colour: bool, out=sys.stdout
) -> int:
    """Print the matching logs (at most `limit`); return how many were printed."""
    printed, cursor = 0, None
    while limit is None or printed < limit:
        page = {**params, "limit": PAGE if limit is None else min(PAGE, limit - printed)}
        if cursor:
            page["cursor"] = cursor
        answer = client.request("GET", "/logs", page)
        if answer.status != 200:
            raise CLIError(describe(answer))
        for log in answer.body["logs"]:
            print(render.as_json(log) if json_out else render.line(log, colour), file=out)
        printed += len(answer.body["logs"])
        out.flush()
        cursor = answer.body["next_cursor"]
        if not cursor:
            break
    return printed
