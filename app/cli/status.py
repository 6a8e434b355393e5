"""`sluice status`: the server's health and its queue."""

from __future__ import annotations

import json
import sys

from app.cli.client import Client


def run(client: Client, *, json_out: bool, out=sys.stdout) -> int:
    """Print /health and /queue/status; 0 if healthy, 1 if a dependency is down."""
    health = client.request("GET", "/health")
    queue = client.request("GET", "/queue/status")
    if json_out:
        print(json.dumps({"health": health.body, "queue": queue.body}), file=out)
    else:
        for title, answer in (("health", health), ("queue", queue)):
            print(f"{title} (HTTP {answer.status})", file=out)
            body = answer.body if isinstance(answer.body, dict) else {}
            for key, value in body.items():
                print(f"  {key:<24} {value}", file=out)
    return 0 if health.status == 200 and queue.status == 200 else 1
