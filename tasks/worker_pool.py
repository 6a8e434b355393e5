"""The seed's command, kept working: a Celery worker with the given pool settings.

python -m tasks.worker_pool --workers 5 --batch-size 100 --max-retries 3 [--beat]
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Parse the seed's flags, export them as settings, and exec a Celery worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=3, help="worker processes (DRAIN_WRITERS + 1)"
    )
    parser.add_argument("--batch-size", type=int, help="entries per chunk (BATCH_SIZE)")
    parser.add_argument("--max-retries", type=int, help="MAX_RETRIES")
    parser.add_argument("--beat", action="store_true", help="also run the beat scheduler")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    if args.batch_size is not None:
        os.environ["BATCH_SIZE"] = str(args.batch_size)
    if args.max_retries is not None:
        os.environ["MAX_RETRIES"] = str(args.max_retries)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "wsgi:celery",
        "worker",
        "-E",
        "--concurrency",
        str(args.workers),
        "--loglevel",
        args.loglevel,
    ]
    if args.beat:
        command.append("--beat")
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
