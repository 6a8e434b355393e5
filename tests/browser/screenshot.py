"""Take docs/screenshot.png: the UI with an hour of history and logs streaming in.

    python -m tests.browser.screenshot [--out docs/screenshot.png] [--dark]

Runs the app in-process (threaded werkzeug) on a throwaway database and unique Redis
names, posts a made-up hour of logs, opens the page in headless Chromium, streams a few
dozen more and shoots at 1280x800. Not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from werkzeug.serving import make_server

from bench.common import isolated_settings, throwaway_database
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.helpers import post

ROOT = Path(__file__).resolve().parents[2]
SERVICES = [
    ("api", "web-1"),
    ("api", "web-2"),
    ("billing", "worker-3"),
    ("auth", "web-1"),
    ("scheduler", "cron-1"),
    ("gateway", "edge-1"),
]
MESSAGES = {
    "TRACE": ["enter handle_request id={n}"],
    "DEBUG": [
        "cache miss for key user:{n}",
        "query took {ms} ms: SELECT * FROM orders WHERE id = {n}",
    ],
    "INFO": [
        "GET /api/v1/users/{n} 200 in {ms} ms",
        "POST /api/v1/orders 201 in {ms} ms",
        "user {n} logged in",
        "invoice INV-{n} paid",
        "job sync-accounts finished in {ms} ms",
    ],
    "WARN": ["slow request: GET /reports/{n} took {ms} ms", "rate limit at 80% for client {n}"],
    "ERROR": [
        "payment declined for order {n}: card_expired",
        "upstream timeout after 30000 ms: GET http://inventory/items/{n}",
        'Traceback (most recent call last):\n  File "app/orders.py", line 88, in create\n'
        "    total = price * qty\n"
        "TypeError: unsupported operand type(s) for *: 'NoneType' and 'int'",
    ],
    "CRITICAL": ["database connection pool exhausted (50/50)"],
}
WEIGHTS = {"TRACE": 3, "DEBUG": 14, "INFO": 62, "WARN": 12, "ERROR": 7, "CRITICAL": 2}


def made_up_log(rng: random.Random, when: datetime | None = None, errors: float = 1.0) -> dict:
    """One plausible log; `errors` scales how likely ERROR and CRITICAL are."""
    weights = {k: v * (errors if k in ("ERROR", "CRITICAL") else 1) for k, v in WEIGHTS.items()}
    level = rng.choices(list(weights), weights=list(weights.values()))[0]
    application, source = rng.choice(SERVICES)
    text = rng.choice(MESSAGES[level]).format(n=rng.randint(100, 99999), ms=rng.randint(3, 4000))
    log = {
        "level": level,
        "application": application,
        "source": source,
        "message": text,
        "metadata": {
            "request_id": f"{rng.getrandbits(48):012x}",
            "region": rng.choice(["eu-west-1", "us-east-1"]),
            "http": {"status": rng.choice([200, 200, 201, 404, 500])},
        },
    }
    if when is not None:
        log["timestamp"] = when.isoformat()
    return log


def history(rng: random.Random, minutes: int = 60) -> list[dict]:
    """An hour with a daily-ish wave and an incident (errors spike) 20 minutes ago."""
    now, logs = datetime.now(UTC), []
    for minute in range(minutes, 0, -1):
        incident = 1 + 6 * math.exp(-(((minute - 20) / 2.5) ** 2))
        count = int(25 + 12 * math.sin(minute / 9) + rng.randint(0, 8) + 10 * (incident - 1))
        for _ in range(count):
            when = now - timedelta(minutes=minute, seconds=-rng.uniform(0, 60))
            logs.append(made_up_log(rng, when, errors=incident))
    return logs


def shoot(base: str, out: Path, dark: bool, rng: random.Random) -> None:
    """Open the page, stream logs into it, take the picture."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(
            viewport={"width": 1280, "height": 800}, color_scheme="dark" if dark else "light"
        )
        page.goto(base + "/")
        page.wait_for_selector("html[data-live=live]")
        page.wait_for_selector("#histogram svg")
        for _ in range(40):
            post(base, [made_up_log(rng)])
            time.sleep(0.08)
        time.sleep(1.5)  # past the arrival highlight
        page.screenshot(path=str(out))
        browser.close()


def main() -> None:
    """Serve, fill, shoot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--dark", action="store_true")
    args = parser.parse_args()
    from app import create_app

    rng = random.Random(5)
    with throwaway_database("sluice_screenshot") as url:
        settings = isolated_settings(url, "sluice-shot", log_level="WARNING")
        server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            logs = history(rng)
            for start in range(0, len(logs), 1000):
                post(base, logs[start : start + 1000])
            shoot(base, args.out, args.dark, rng)
        finally:
            server.shutdown()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
