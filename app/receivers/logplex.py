"""Heroku log drains: an `application/logplex-1` body as intake items.

Logplex sends octet-counted RFC 5424 frames *without* structured data, e.g.

    83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up

(HOSTNAME is always `host`, APP-NAME is `app` for the app's own output or `heroku` for
the platform's, PROCID is the dyno, MSGID is `-`). The frame is read as RFC 5424 with a
NILVALUE put where the structured data would be, so a message that starts with `[` is
never mistaken for it. https://devcenter.heroku.com/articles/log-drains#https-drains
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.pipeline.intake import Invalid
from app.receivers.framing import MAX_FRAME_BYTES, BadFrame, split_body
from parsers import parse_line

# PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, then the message.
_HEADER = re.compile(rb"<\d{1,3}>\d{1,2} \S+ \S+ \S+ \S+ \S+(?: |$)")
# How long a frame id is remembered: logplex retries a failed POST within minutes.
FRAME_ID_TTL = 6 * 3600


@dataclass(frozen=True, slots=True)
class Drain:
    """What the request says about its drain: headers and the URL's `app` name."""

    token: str | None
    frame_id: str | None
    msg_count: int | None
    app: str | None


def frame_item(frame: bytes | BadFrame, drain: Drain) -> dict | Invalid:
    """One logplex frame as LogSchema input."""
    if isinstance(frame, BadFrame):
        return Invalid({"_frame": [frame.reason]})
    header = _HEADER.match(frame)
    if header is None:
        return Invalid({"_frame": ["not an RFC 5424 logplex frame"]})
    line = frame[: header.end()].rstrip(b" ") + b" - " + frame[header.end() :]
    fmt, parsed = parse_line(line.decode("utf-8", "replace"), "syslog5424")
    if fmt != "syslog5424":
        return Invalid({"_frame": ["not an RFC 5424 logplex frame"]})
    meta = parsed.metadata
    meta.pop("structured_data", None)  # logplex never sends any; ours was a placeholder
    dyno = meta.pop("procid", None)
    meta.update(
        format="logplex",
        heroku_source=parsed.application,  # "app" or "heroku" (the platform itself)
        dyno=dyno,
        drain_token=drain.token,
        frame_id=drain.frame_id,
    )
    return {
        "timestamp": parsed.timestamp,
        "level": parsed.level or "INFO",
        "source": dyno,
        "application": drain.app or drain.token or parsed.application,
        "message": parsed.message,
        "metadata": meta,
    }


def decode(body: bytes, drain: Drain, limit: int = MAX_FRAME_BYTES) -> list[dict | Invalid]:
    """Every frame of the body as an item, bad frames as Invalid in their places."""
    return [frame_item(frame, drain) for frame in split_body(body, limit)]


def count_problem(items: list, drain: Drain) -> str | None:
    """Why the frames found disagree with Logplex-Msg-Count, or None when they agree."""
    if drain.msg_count is None or drain.msg_count == len(items):
        return None
    return f"Logplex-Msg-Count is {drain.msg_count} but the body holds {len(items)} frames"


def once_key(prefix: str, drain: Drain) -> str | None:
    """The Redis key that marks this frame id as enqueued (None without a frame id)."""
    if not drain.frame_id:
        return None
    return f"{prefix}:logplex:frame:{drain.token or '-'}:{drain.frame_id}"
