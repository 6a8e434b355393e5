"""The format of last resort: the whole line is the message, nothing else is known."""

from __future__ import annotations

from parsers.base import LogParser, ParsedLog


class RawParser(LogParser):
    """Accept any line as it is; never part of detection, only its fallback."""

    name = "raw"
    description = "Anything else: the whole line is the message, with no other fields."
    example = "Something happened that no format above describes"

    def parse(self, raw: str) -> ParsedLog:
        """Return the line as the message, metadata empty."""
        return ParsedLog(message=raw, metadata={})
