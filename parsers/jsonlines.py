"""JSON Lines (NDJSON): one JSON object per line, as most log shippers write it."""

from __future__ import annotations

import json
import re

from parsers.aliases import record_to_log
from parsers.base import LogParser, ParsedLog

# `\u0000` and lone surrogates decode fine but cannot be stored (PostgreSQL text and
# UTF-8 refuse them); only a line that spells one as an escape can produce them.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def _keep_constant(name: str) -> str:
    # NaN and Infinity are not JSON; keep them as the text the sender wrote.
    return name


_decode = json.JSONDecoder(parse_constant=_keep_constant).decode


class JsonParser(LogParser):
    """Parse one JSON object per line; arrays, numbers and broken JSON are not this format."""

    name = "json"
    description = "JSON Lines / NDJSON: one JSON object per line, common field aliases mapped."
    example = (
        '{"ts": "2024-05-01T12:00:00Z", "level": "warn", "msg": "disk almost full",'
        ' "service": "api", "host": "web-1", "disk": {"free_mb": 512}}'
    )

    def parse(self, raw: str) -> ParsedLog | None:
        """Return the object's fields, or None when the line is not a JSON object."""
        text = raw.strip()
        if not text.startswith("{"):
            return None
        try:
            record = _decode(text)
        except (ValueError, RecursionError):
            # RecursionError: `{"a":[[[[...` nested deeper than the decoder's stack.
            return None
        if not isinstance(record, dict):
            return None
        if "\\u" in text and _UNSTORABLE_ESCAPE.search(text):
            try:
                record = _scrub(record)
            except RecursionError:
                return None
        return record_to_log(record, text)


def _scrub(value: object) -> object:
    """Replace NUL and lone surrogates, at any depth, with U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE_CHAR.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value
