"""Choose the format of a line and parse it: first-character dispatch, then the parsers."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from parsers.apache import ApacheParser
from parsers.base import LogParser, ParsedLog
from parsers.jsonlines import JsonParser
from parsers.logfmt import LogfmtParser
from parsers.raw import RawParser
from parsers.syslog3164 import Syslog3164Parser
from parsers.syslog5424 import Syslog5424Parser

RAW = "raw"
# `<PRI>` and, for RFC 5424 only, `VERSION ` right after it.
_PRI = re.compile(r"<\d{1,3}>(?:([1-9]\d{0,2}) )?")
# First letters of Jan..Dec: a BSD syslog line without PRI starts with its month.
_MONTH_INITIALS = "JFMASOND"


class UnknownFormatError(ValueError):
    """A format name no parser is registered under; the API answers it with a 400."""


class ParserFactory:
    """The registered formats, in detection order, and the dispatch between them.

    Detection order, first success wins:

    1. custom parsers (`add_parser`), in registration order, on every line;
    2. by the first non-blank character:
       `{` -> json;
       `<PRI>` then `VERSION ` (digits, space) -> syslog5424 and nothing else;
       `<PRI>` otherwise -> syslog3164;
       J F M A S O N D (a month name) -> syslog3164;
    3. then, for every line the step above did not claim: apache, then logfmt;
    4. nothing matched -> raw (the line is the message).

    Each parser refuses lines that are not its own, so a line reaches only the one or
    two regexes its first character allows.
    """

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        syslog3164 = Syslog3164Parser(now) if now is not None else Syslog3164Parser()
        self._json = JsonParser()
        self._syslog5424 = Syslog5424Parser()
        self._syslog3164 = syslog3164
        self._tail = (ApacheParser(), LogfmtParser())
        self._raw = RawParser()
        self._builtin: tuple[LogParser, ...] = (
            self._json,
            self._syslog5424,
            self._syslog3164,
            *self._tail,
        )
        self._custom: list[LogParser] = []
        self._rebuild()

    def add_parser(self, parser: LogParser, replace: bool = False) -> None:
        """Register a custom parser; it is tried before every built-in, in registration order.

        A name taken by a built-in format is refused; a custom name already registered is
        refused unless `replace`, which swaps it in place (same position).
        """
        if not isinstance(parser, LogParser) or not parser.name:
            raise ValueError("add_parser needs a LogParser with a name")
        if parser.name == RAW or any(p.name == parser.name for p in self._builtin):
            raise ValueError(f"{parser.name!r} is a built-in format and cannot be replaced")
        for index, existing in enumerate(self._custom):
            if existing.name == parser.name:
                if not replace:
                    raise ValueError(f"a parser named {parser.name!r} is already registered")
                self._custom[index] = parser
                break
        else:
            self._custom.append(parser)
        self._rebuild()

    def remove_parser(self, name: str) -> None:
        """Unregister a custom parser (built-in formats cannot be removed)."""
        kept = [p for p in self._custom if p.name != name]
        if len(kept) == len(self._custom):
            raise UnknownFormatError(f"no custom parser named {name!r}")
        self._custom = kept
        self._rebuild()

    def get(self, name: str) -> LogParser:
        """The parser registered as `name` (`raw` included); UnknownFormatError otherwise."""
        parser = self._by_name.get(name)
        if parser is None:
            known = ", ".join(self._by_name)
            raise UnknownFormatError(f"unknown format {name!r}; known formats: {known}")
        return parser

    def names(self) -> list[str]:
        """Every format name, in detection order, `raw` last."""
        return list(self._by_name)

    def formats(self) -> list[dict]:
        """Every format as `{"name", "description", "example"}`, in detection order."""
        return [
            {"name": p.name, "description": p.description, "example": p.example}
            for p in self._by_name.values()
        ]

    def detect_format(self, raw: str) -> str | None:
        """The name of the format that parses `raw`, or None when only raw would."""
        name, _ = self.parse(raw)
        return None if name == RAW else name

    def parse(
        self, raw: str, fmt: str | None = None, now: datetime | None = None
    ) -> tuple[str, ParsedLog]:
        """`(format name, ParsedLog)`; with `fmt`, only that parser is tried, then raw.

        `now` anchors formats without a year (BSD syslog); None means the parser's clock.
        Surrounding whitespace is ignored; the raw fallback keeps the line as given.
        Raises UnknownFormatError for an unregistered `fmt`, never for the line itself.
        """
        line = raw.strip() if raw[:1].isspace() or raw[-1:].isspace() else raw
        if fmt is None:
            for parser in self._chain(line):
                parsed = parser.parse(line) if now is None else parser.parse_at(line, now)
                if parsed is not None:
                    return parser.name, parsed
            return RAW, ParsedLog(raw, metadata={})
        parser = self.get(fmt)
        if parser is self._raw:
            parsed = None
        else:
            parsed = parser.parse(line) if now is None else parser.parse_at(line, now)
        if parsed is None:
            return RAW, ParsedLog(raw, metadata={})
        return parser.name, parsed

    def _chain(self, line: str) -> tuple[LogParser, ...]:
        first = line[:1]
        if first == "<":
            pri = _PRI.match(line)
            if pri is not None:
                return self._chain_5424 if pri.group(1) else self._chain_3164
        return self._chains.get(first, self._chain_default)

    def _rebuild(self) -> None:
        # Chains are rebuilt whole and swapped in, so a parse running in another thread
        # sees either the old set of parsers or the new one.
        custom = tuple(self._custom)
        self._chain_default = custom + self._tail
        self._chain_5424 = (*custom, self._syslog5424)
        self._chain_3164 = (*custom, self._syslog3164, *self._tail)
        chains = {"{": (*custom, self._json, *self._tail)}
        chains.update(dict.fromkeys(_MONTH_INITIALS, self._chain_3164))
        self._chains = chains
        ordered = (*custom, *self._builtin, self._raw)
        self._by_name = {p.name: p for p in ordered}
