"""Month names, fixed UTC offsets and "now": the calendar pieces text formats share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

# English abbreviations as servers write them; not `calendar.month_abbr`, which follows
# the process locale.
MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "Jan",
            "Feb",
            "Mar",
            "Apr",
            "May",
            "Jun",
            "Jul",
            "Aug",
            "Sep",
            "Oct",
            "Nov",
            "Dec",
        ),
        1,
    )
}
# One tzinfo per offset seen: a server writes the same offset on every line.
_ZONES: dict[str, timezone] = {}


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def fixed_zone(offset: str) -> timezone | None:
    """`-0700` -> the tzinfo for that offset, or None when it is not a valid offset."""
    zone = _ZONES.get(offset)
    if zone is None:
        if len(offset) != 5 or offset[0] not in "+-" or not offset[1:].isdigit():
            return None
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        if minutes >= 24 * 60:
            return None
        zone = _ZONES[offset] = timezone(
            timedelta(minutes=-minutes if offset[0] == "-" else minutes)
        )
    return zone
