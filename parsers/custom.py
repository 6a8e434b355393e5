"""Custom formats from configuration: one regex per format, named groups become fields."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# The `regex` module, not `re`: only it can stop a match after a time limit, and a pattern
# written in configuration may backtrack catastrophically (`(a+)+$`) on one bad line.
import regex

from parsers.base import LogParser, ParsedLog
from parsers.fields import normalize_level, parse_timestamp

log = logging.getLogger(__name__)

FIELD_GROUPS = ("timestamp", "level", "message", "source", "application")
DEFAULT_TIMEOUT_MS = 50
# Names travel in URLs (`?format=name`) and in stored metadata.
_VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
RESERVED_NAMES = frozenset({"json", "apache", "syslog5424", "syslog3164", "logfmt", "raw"})


class RegexParser(LogParser):
    """A format defined by one pattern; `search` semantics, so anchor it with `^` if needed.

    Groups named timestamp, level, message, source and application fill those fields;
    every other named group goes to metadata. A match that runs longer than `timeout_ms`
    is abandoned and the line is reported as not this format.
    """

    def __init__(
        self,
        name: str,
        pattern: str,
        flags: int = 0,
        timeout_ms: float = DEFAULT_TIMEOUT_MS,
        example: str = "",
        description: str = "",
        timestamp_format: str | None = None,
    ) -> None:
        if not _VALID_NAME.match(name):
            raise ValueError(f"custom parser name {name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        try:
            self.pattern = regex.compile(pattern, flags)
        except regex.error as exc:
            raise ValueError(f"custom parser {name!r}: invalid pattern: {exc}") from None
        if timeout_ms <= 0:
            raise ValueError(f"custom parser {name!r}: timeout_ms must be positive")
        self.name = name
        self.example = example
        self.description = description or f"Custom format {name!r} (regex)."
        self.timeout = timeout_ms / 1000.0
        self.timestamp_format = timestamp_format
        self.timeouts = 0
        groups = set(self.pattern.groupindex)
        self._fields = tuple(g for g in FIELD_GROUPS if g in groups)
        self._extra = tuple(g for g in self.pattern.groupindex if g not in FIELD_GROUPS)

    def parse(self, raw: str) -> ParsedLog | None:
        """Return the named groups as fields and metadata, or None on no match or timeout."""
        try:
            match = self.pattern.search(raw, timeout=self.timeout)
        except TimeoutError:
            self.timeouts += 1
            log.warning("custom parser %s timed out on a %d-char line", self.name, len(raw))
            return None
        if match is None:
            return None
        found = match.groupdict()
        metadata = {key: found[key] for key in self._extra}
        message = found.get("message")
        level_text = found.get("level")
        level = normalize_level(level_text)
        if level is None and level_text is not None:
            metadata["level_raw"] = level_text
        ts_text = found.get("timestamp")
        timestamp = self._timestamp(ts_text) if ts_text is not None else None
        if timestamp is None and ts_text is not None:
            metadata["timestamp_raw"] = ts_text
        return ParsedLog(
            raw if message is None else message,
            timestamp,
            level,
            found.get("source"),
            found.get("application"),
            metadata,
        )

    def _timestamp(self, text: str) -> datetime | None:
        if self.timestamp_format is None:
            return parse_timestamp(text)
        try:
            parsed = datetime.strptime(text, self.timestamp_format)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_custom_parsers(spec: str) -> list[RegexParser]:
    """Compile a JSON list of `{"name", "pattern", "example"?, ...}` into parsers.

    Optional keys: `description`, `timeout_ms` (default 50), `timestamp_format` (strptime).
    Raises ValueError naming the entry for bad JSON, a bad pattern, a duplicate or
    reserved name, or an `example` the pattern does not parse.
    """
    if not spec or not spec.strip():
        return []
    try:
        entries = json.loads(spec)
    except ValueError as exc:
        raise ValueError(f"custom parser spec is not valid JSON: {exc}") from None
    if not isinstance(entries, list):
        raise ValueError("custom parser spec must be a JSON list of objects")
    parsers: list[RegexParser] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        parser = _build_one(index, entry)
        if parser.name in seen:
            raise ValueError(f"custom parser {parser.name!r} is defined twice")
        seen.add(parser.name)
        parsers.append(parser)
    return parsers


def _build_one(index: int, entry: object) -> RegexParser:
    if not isinstance(entry, dict):
        raise ValueError(f"custom parser #{index} must be an object")
    name, pattern = entry.get("name"), entry.get("pattern")
    if not isinstance(name, str) or not isinstance(pattern, str):
        raise ValueError(f"custom parser #{index} needs string 'name' and 'pattern'")
    if name in RESERVED_NAMES:
        raise ValueError(f"custom parser {name!r} uses the name of a built-in format")
    timeout_ms = entry.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int | float):
        raise ValueError(f"custom parser {name!r}: timeout_ms must be a number")
    timestamp_format = entry.get("timestamp_format")
    if timestamp_format is not None and not isinstance(timestamp_format, str):
        raise ValueError(f"custom parser {name!r}: timestamp_format must be a string")
    parser = RegexParser(
        name,
        pattern,
        timeout_ms=timeout_ms,
        example=str(entry.get("example", "")),
        description=str(entry.get("description", "")),
        timestamp_format=timestamp_format,
    )
    # Checked here, at start-up, rather than discovered as unparsed lines in production.
    if parser.example and parser.parse(parser.example) is None:
        raise ValueError(f"custom parser {name!r}: pattern does not match its example")
    return parser
