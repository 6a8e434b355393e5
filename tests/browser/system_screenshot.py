"""Take docs/system.png: the system page after a minute or so of real traffic.

    python -m tests.browser.system_screenshot [--out docs/system.png] [--seconds 70]

Runs the app in-process on a throwaway database and unique Redis names, with the real
drain in a thread, posts waves of made-up logs (and a few entries that cannot be stored,
so the dead letters have reasons to show) for `--seconds`, then shoots the page at
1280x800. Every number on it is real. Not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import time
from pathlib import Path

import orjson
import requests
from werkzeug.serving import make_server

from bench.common import isolated_settings, throwaway_database
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.screenshot import made_up_log

ROOT = Path(__file__).resolve().parents[2]
POISON = [
    {"d": orjson.dumps({"message": "order 1234 failed", "source": "x" * 300})},
    {"r": b"GET /health 200 \x00 2ms", "f": b""},
    {"d": b'{"message": "truncated by the shipper", "level": "err'},
]


def traffic(base: str, settings, seconds: float, rng: random.Random) -> None:
    """Waves of logs for `seconds`, a poisoned entry now and then."""
    from app.pipeline.connections import redis_client

    r, started, poison = redis_client(settings.redis_url), time.monotonic(), list(POISON)
    while (elapsed := time.monotonic() - started) < seconds:
        per_second = int(60 + 50 * math.sin(elapsed / 9) + rng.randint(0, 20))
        body = orjson.dumps([made_up_log(rng) for _ in range(per_second // 4)])
        requests.post(
            f"{base}/data/fast", data=body, headers={"Content-Type": "application/json"}, timeout=10
        )
        if poison and elapsed > seconds * (len(POISON) - len(poison) + 1) / (len(POISON) + 1):
            r.xadd(settings.stream_name, poison.pop(0))
        time.sleep(0.25)


def shoot(base: str, out: Path) -> None:
    """Open the page, let it refresh, take the picture."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme="light")
        page.goto(base + "/system")
        page.wait_for_function("() => Number(document.documentElement.dataset.refreshes) >= 2")
        page.screenshot(path=str(out))
        browser.close()


def main() -> None:
    """Serve, drain, send, shoot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "system.png")
    parser.add_argument("--seconds", type=float, default=70)
    args = parser.parse_args()
    import logging

    from app import create_app
    from app.pipeline import stream
    from app.pipeline.connections import redis_client
    from tasks.drain import drain_stream

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    rng = random.Random(13)
    with throwaway_database("sluice_screenshot") as url:
        settings = isolated_settings(url, "sluice-shot", log_level="ERROR")
        stream.ensure_group(redis_client(settings.redis_url), settings)
        server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stop = threading.Event()

        def drain():
            while not stop.is_set():
                drain_stream(settings, "sluice-7f3a-4182", budget=1.0, should_stop=stop.is_set)

        threading.Thread(target=drain, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            traffic(base, settings, args.seconds, rng)
            shoot(base, args.out)
        finally:
            stop.set()
            server.shutdown()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
