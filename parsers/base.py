"""The record every parser yields and the interface every format implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class ParsedLog:
    """One log as a parser understood it; fields it could not find stay None.

    `level` is already normalised (see `parsers.fields.LEVELS`). `metadata` holds every
    other field the format carries, with proper types (ints stay ints).
    """

    message: str
    timestamp: datetime | None = None
    level: str | None = None
    source: str | None = None
    application: str | None = None
    metadata: dict = field(default_factory=dict)


class LogParser:
    """A format: a name, an example line, and `parse(raw) -> ParsedLog | None`.

    `parse` returns None when the line is not in this format. It must never raise, on
    any string at all: detection calls it on arbitrary input.
    """

    name: str = ""
    example: str = ""
    description: str = ""

    def parse(self, raw: str) -> ParsedLog | None:  # pragma: no cover - interface
        raise NotImplementedError

    def parse_at(self, raw: str, now: datetime) -> ParsedLog | None:
        """`parse`, with `now` as the current time for formats that leave the year out."""
        # Only formats whose reading depends on the clock (BSD syslog) override this.
        return self.parse(raw)
