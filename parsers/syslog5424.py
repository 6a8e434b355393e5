"""RFC 5424 syslog: `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`."""

from __future__ import annotations

import re

from parsers.base import LogParser, ParsedLog
from parsers.fields import parse_timestamp
from parsers.syslogpri import MAX_PRI, priority_fields

NIL = "-"
BOM = "\ufeff"
_HEADER = re.compile(r"<(\d{1,3})>([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+)(?: |\Z)")
_NAME = r'[^\s=\]"]+'
_VALUE = r'"((?:[^"\\]|\\.)*)"'
_ELEMENT = re.compile(r"\[(" + _NAME + r")((?: " + _NAME + "=" + _VALUE + r")*) ?\]")
_PARAM = re.compile("(" + _NAME + ")=" + _VALUE)
# RFC 5424 6.3.3: only `"`, `\` and `]` are escaped; any other backslash is literal.
_ESCAPE = re.compile(r'\\(["\\\]])')


class Syslog5424Parser(LogParser):
    """Parse RFC 5424 lines, structured data included; `-` (NILVALUE) becomes None."""

    name = "syslog5424"
    description = "Syslog, RFC 5424 (version 1), with structured data."
    example = (
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473"
        ' iut="3" eventSource="Application" eventID="1011"] An application event log entry'
    )

    def parse(self, raw: str) -> ParsedLog | None:
        """Return the header, structured data and message, or None if not RFC 5424."""
        if not raw.startswith("<"):
            return None
        header = _HEADER.match(raw)
        if header is None:
            return None
        pri, version, when, host, app, procid, msgid = header.groups()
        if int(pri) > MAX_PRI:
            return None
        level, metadata = priority_fields(int(pri))
        metadata["version"] = int(version)
        metadata["procid"] = None if procid == NIL else procid
        metadata["msgid"] = None if msgid == NIL else msgid
        structured, message = _split_sd(raw, header.end())
        metadata["structured_data"] = structured
        timestamp = None
        if when != NIL:
            timestamp = parse_timestamp(when)
            if timestamp is None:
                metadata["timestamp_raw"] = when
        if message.startswith(BOM):
            message = message[1:]
        source = None if host == NIL else host
        application = None if app == NIL else app
        return ParsedLog(message, timestamp, level, source, application, metadata)


def _split_sd(raw: str, pos: int) -> tuple[dict | None, str]:
    """Structured data starting at `pos` and the message after it.

    Senders that skip the SD field or write a broken one are common; rather than
    losing the header, everything after MSGID then becomes the message.
    """
    rest = raw[pos:]
    if rest == NIL:
        return None, ""
    if rest.startswith("- "):
        return None, rest[2:]
    if not rest.startswith("["):
        return None, rest
    elements: dict[str, dict[str, str]] = {}
    end = pos
    while raw.startswith("[", end):
        element = _ELEMENT.match(raw, end)
        if element is None:
            return None, rest
        params = elements.setdefault(element.group(1), {})
        for key, value in _PARAM.findall(element.group(2)):
            params[key] = _ESCAPE.sub(r"\1", value) if "\\" in value else value
        end = element.end()
    if end == len(raw):
        return elements, ""
    if raw[end] != " ":
        return None, rest
    return elements, raw[end + 1 :]
