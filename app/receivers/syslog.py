"""A syslog frame (RFC 5424 or BSD/RFC 3164, from TCP, UDP or TLS) as an intake item.

The existing parsers do the parsing (`parsers.syslog5424`, `parsers.syslog3164`; a line
in neither format is kept raw); this adds where the frame came from. Parsing here, not
in the drain, is what lets the peer address travel with the log.
"""

from __future__ import annotations

from datetime import datetime

from app.pipeline.intake import Invalid
from app.pipeline.record import raw_to_data
from app.receivers.framing import BadFrame


def frame_item(
    frame: bytes | BadFrame, peer: tuple[str, int] | None, transport: str, now: datetime
) -> dict | Invalid:
    """One frame as LogSchema input with `metadata.peer` and `metadata.transport`."""
    if isinstance(frame, BadFrame):
        return Invalid({"_frame": [frame.reason]})
    line = frame.decode("utf-8", "replace").rstrip("\r\n\x00")
    if not line.strip():
        return Invalid({"message": ["Empty syslog frame."]})
    if "\x00" in line:
        return Invalid({"message": ["Contains a NUL byte."]})
    item = raw_to_data(line, None, now)
    item["metadata"]["transport"] = transport
    if peer is not None:
        item["metadata"]["peer"] = f"{peer[0]}:{peer[1]}"
    return item
