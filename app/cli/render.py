"""How a log looks in a terminal: one line, coloured by level when the output is one."""

from __future__ import annotations

import json
import os
import sys

RESET = "\x1b[0m"
COLOURS = {
    "TRACE": "\x1b[2m",
    "DEBUG": "\x1b[36m",
    "INFO": "\x1b[32m",
    "WARN": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;41;97m",
}
DIM = "\x1b[2m"


def use_colour(choice: str, stream=sys.stdout) -> bool:
    """--color auto|always|never; auto: a terminal, and NO_COLOR unset (no-color.org)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _clean(text: str) -> str:
    # Log content is untrusted: escape sequences in a message must not drive the terminal.
    return "".join(c if c.isprintable() or c == "\t" else f"\\x{ord(c):02x}" for c in text)


def line(log: dict, colour: bool = False) -> str:
    """`2026-12-02T10:00:00.123+00:00 ERROR web-1/billing message {metadata}`."""
    level = log.get("level") or "INFO"
    where = "/".join(x for x in (log.get("source"), log.get("application")) if x)
    meta = {k: v for k, v in (log.get("metadata") or {}).items() if k != "format"}
    parts = [
        log.get("timestamp", ""),
        f"{level:<8}",
        _clean(where) if where else "-",
        _clean(log.get("message", "")),
    ]
    if meta:
        parts.append(_clean(json.dumps(meta, ensure_ascii=False, separators=(",", ":"))))
    if colour:
        parts[0] = f"{DIM}{parts[0]}{RESET}"
        parts[1] = f"{COLOURS.get(level, '')}{parts[1]}{RESET}"
    return " ".join(parts)


def as_json(log: dict) -> str:
    """The log as the API gave it, one JSON object per line."""
    return json.dumps(log, ensure_ascii=False, separators=(",", ":"))
