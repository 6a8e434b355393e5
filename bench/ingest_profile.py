"""A py-spy flame graph of `POST /data/fast` under load (docs/perf/README.md).

Starts one gunicorn worker (gevent, as the Procfile runs it) on loopback with its own
stream and key names, sends 100-log batches from a few threads for `--seconds`, records
the worker with py-spy meanwhile, then deletes its Redis keys. Bounded in time and only
on 127.0.0.1. Run from a checkout: `python -m bench.ingest_profile OUT.svg`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid

import orjson
import redis
import requests

from tests.redisserver import free_port


def batch(size: int) -> bytes:
    """A realistic batch: messages, levels, a source and a little metadata."""
    return orjson.dumps(
        [
            {
                "message": f"GET /api/items/{i} 200 in {i % 50} ms",
                "level": "INFO",
                "source": "web-01",
                "application": "api",
                "metadata": {"request_id": uuid.uuid4().hex, "status": 200},
            }
            for i in range(size)
        ]
    )


def load(url: str, body: bytes, until: float, counts: list[int]) -> None:
    """POST `body` until `until`; count the 202s."""
    session = requests.Session()
    done = 0
    while time.monotonic() < until:
        response = session.post(url, data=body, headers={"Content-Type": "application/json"})
        done += response.status_code == 202
    counts.append(done)


def main() -> int:
    """Serve, load, record; print requests per second."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--format", default="flamegraph", help="py-spy's: flamegraph, raw")
    parser.add_argument("--app-dir", default=".", help="the checkout gunicorn serves")
    args = parser.parse_args()
    port, prefix = free_port(), f"sluice-profile:{uuid.uuid4().hex[:8]}"
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "STREAM_NAME": f"{prefix}:log_queue",
        "KEY_PREFIX": prefix,
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
    }
    bindir = os.path.dirname(sys.executable)
    web = subprocess.Popen(
        [f"{bindir}/gunicorn", "wsgi:app", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}"],
        env=env,
        cwd=args.app_dir,
    )
    try:
        url = f"http://127.0.0.1:{port}/data/fast"
        body = batch(args.batch)
        for _ in range(100):  # wait for the worker, and warm it up
            try:
                if requests.post(url, data=body, timeout=30).status_code == 202:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        worker = int(
            subprocess.check_output(["pgrep", "-P", str(web.pid)]).split()[0]
        )  # gunicorn's one worker
        until = time.monotonic() + args.seconds
        counts: list[int] = []
        threads = [
            threading.Thread(target=load, args=(url, body, until, counts))
            for _ in range(args.threads)
        ]
        spy = subprocess.Popen(
            [
                f"{bindir}/py-spy",
                "record",
                "-p",
                str(worker),
                "-d",
                str(int(args.seconds)),
                "-r",
                "200",
                "-o",
                args.out,
                "-f",
                args.format,
                "--nonblocking",
            ]
        )
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        spy.wait(timeout=60)
        print(f"{sum(counts) / args.seconds:.0f} requests/s of {args.batch} logs")
    finally:
        web.terminate()
        web.wait(timeout=30)
        r = redis.Redis.from_url(redis_url)
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
