"""logfmt: `level=info msg="hello world" user=42`, as Heroku and Go services write it."""

from __future__ import annotations

import re

from parsers.aliases import record_to_log
from parsers.base import LogParser, ParsedLog

# KEY, KEY=, KEY=bare or KEY="quoted \" value", each ending at whitespace; anything
# else is caught by the last group as junk, which makes the line not logfmt. One findall
# both validates and splits (possessive quantifiers: nothing here needs backtracking).
_TOKENS = re.compile(r'\s*+(?:([^\s="]++)(=(?:"(?:[^"\\]++|\\.)*+"|[^\s"]\S*+)?)?(?=\s|\Z)|(\S+))')
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPED = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
# Heroku's router writes its level as `at=info`; read only when no level alias is present.
FALLBACK_LEVEL_KEY = "at"


class LogfmtParser(LogParser):
    """Parse logfmt; values stay strings (logfmt is untyped), a bare key is True."""

    name = "logfmt"
    description = "logfmt key=value pairs (Heroku, Go): at least two, and more than bare words."
    example = (
        'ts=2024-05-01T12:00:00Z level=info msg="request done" app=web host=web-1'
        " method=GET path=/health status=200 duration=3ms"
    )

    def parse(self, raw: str) -> ParsedLog | None:
        """Return the pairs as fields and metadata, or None when the line is not logfmt."""
        if raw.count("=") < 2:
            return None
        record: dict = {}
        pairs = bare = 0
        for key, assigned, junk in _TOKENS.findall(raw):
            if junk:
                return None
            if not assigned:
                record[key] = True
                bare += 1
            elif assigned.startswith('="'):
                record[key] = _unquote(assigned[2:-1])
                pairs += 1
            else:
                record[key] = assigned[1:]
                pairs += 1
        # Two pairs, and more pairs than bare words: "I set a=1 and b=2" is a sentence.
        if pairs < 2 or pairs <= bare:
            return None
        return record_to_log(record, raw.strip(), FALLBACK_LEVEL_KEY)


def _unquote(text: str) -> str:
    # Go's %q escapes; anything else after a backslash is kept as written.
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: _ESCAPED.get(m.group(1), m.group(0)), text)
