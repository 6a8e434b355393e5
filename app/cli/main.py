"""`sluice`: the command line. `sluice --help`, `sluice tail --help` and so on.

The server and key come from --url/--key, else SLUICE_URL/SLUICE_KEY (default
http://127.0.0.1:8000, no key); the key is sent as `Authorization: Bearer <key>`.
Exit status: 0 done, 1 a failure (the server's message is printed), 2 a usage problem.
"""

from __future__ import annotations

import argparse
import os
import sys

from app.cli import query, render, send, status, tail
from app.cli.client import DEFAULT_URL, Client, CLIError

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-level", type=str.upper, choices=LEVELS, help="this level and up")
    parser.add_argument(
        "--level",
        action="append",
        type=str.upper,
        choices=LEVELS,
        help="only this level (repeat for several)",
    )
    parser.add_argument("--source", action="append", help="only this source (repeatable)")
    parser.add_argument(
        "--app", action="append", dest="application", help="only this application (repeatable)"
    )
    parser.add_argument("--contains", help="message contains this (case-insensitive)")
    parser.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="metadata holds this value (meta.KEY=VALUE of GET /logs)",
    )


def filter_params(args) -> dict:
    """The filter flags as the query parameters of /logs and /ws/logs."""
    out = {}
    for name in ("min_level", "level", "source", "application", "contains"):
        value = getattr(args, name, None)
        if value:
            out[name] = value
    if getattr(args, "q", None):
        out["q"] = args.q
    for pair in args.meta:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"--meta takes KEY=VALUE, got {pair!r}", 2)
        out.setdefault(f"meta.{key}", []).append(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line's grammar."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("SLUICE_URL") or DEFAULT_URL,
        help="the server (SLUICE_URL; default %(default)s)",
    )
    common.add_argument(
        "--key",
        default=os.environ.get("SLUICE_KEY", ""),
        help="API key (SLUICE_KEY), sent as Authorization: Bearer",
    )
    common.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    parser = argparse.ArgumentParser(
        prog="sluice", description="Sluice from the terminal.", parents=[common]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("tail", parents=[common], help="follow logs live")
    _filters(p)
    p.add_argument("-q", "--query", dest="q", help="full text (as GET /logs q=)")
    p.add_argument("-n", "--lines", type=int, default=10, help="print the newest N first")
    p.add_argument("--json", action="store_true", help="one JSON log per line")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=75.0,
        help="reconnect after this many seconds without a message",
    )

    p = commands.add_parser("query", parents=[common], help="search stored logs")
    p.add_argument("q", nargs="?", help='full text: words, "a phrase", -excluded')
    _filters(p)
    p.add_argument("--since", default="1h", help="15m, 24h, 7d or ISO 8601 (default 1h)")
    p.add_argument("--until")
    p.add_argument("--order", choices=("desc", "asc"), default="desc")
    p.add_argument("--limit", type=int, help="stop after this many")
    p.add_argument("--json", action="store_true", help="one JSON log per line")

    p = commands.add_parser("send", parents=[common], help="ship lines from stdin")
    p.add_argument("--app", dest="application", help="send each line as this application's")
    p.add_argument("--format", help="parse every line as this format (GET /parse/formats)")
    p.add_argument("--batch", type=int, default=1000, help="lines per request")
    p.add_argument("--sync", action="store_true", help="POST /data/ (stored before answered)")
    p.add_argument("--retries", type=int, default=8, help="per batch, on 429/5xx/no answer")

    p = commands.add_parser("status", parents=[common], help="health and queue")
    p.add_argument("--json", action="store_true")
    return parser


def run(args) -> int:
    """Run the parsed command; return the exit status."""
    client = Client(args.url, args.key)
    colour = render.use_colour(args.color)
    if args.command == "tail":
        tail.Tail(
            client,
            filter_params(args),
            lines=max(args.lines, 0),
            json_out=args.json,
            colour=colour,
            idle_timeout=args.idle_timeout,
        ).run()
    elif args.command == "query":
        params = filter_params(args)
        params.update(since=args.since, order=args.order)
        if args.until:
            params["until"] = args.until
        query.run(client, params, limit=args.limit, json_out=args.json, colour=colour)
    elif args.command == "send":
        totals = send.run(
            client,
            app=args.application,
            fmt=args.format,
            batch=max(args.batch, 1),
            sync=args.sync,
            retries=args.retries,
        )
        print(
            f"sluice: {totals.lines} lines sent, {totals.accepted} accepted, "
            f"{len(totals.rejected)} rejected",
            file=sys.stderr,
        )
        for item in totals.rejected[:20]:
            print(f"  line {item['index'] + 1}: {item.get('errors')}", file=sys.stderr)
        return 1 if totals.rejected else 0
    elif args.command == "status":
        return status.run(client, json_out=args.json)
    return 0


def main(argv: list[str] | None = None) -> None:
    """The console script's entry point."""
    args = build_parser().parse_args(argv)
    try:
        code = run(args)
    except CLIError as exc:
        print(f"sluice: {exc}", file=sys.stderr)
        code = exc.status
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `sluice query ... | head`
        sys.stderr.close()
        code = 0
    sys.exit(code)
