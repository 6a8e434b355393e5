"""The `<PRI>` both syslog formats start with: facility and severity in one number."""

from __future__ import annotations

from parsers.fields import SYSLOG_SEVERITY

# RFC 5424 table 1, codes 0..23, with the names syslog.conf and rsyslog use.
FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
)
MAX_PRI = len(FACILITIES) * 8 - 1  # 191


def priority_fields(pri: int) -> tuple[str, dict]:
    """PRI -> (stored level, metadata with `facility`, `facility_name`, `severity`)."""
    facility, severity = divmod(pri, 8)
    metadata = {
        "facility": facility,
        "facility_name": FACILITIES[facility],
        "severity": severity,
    }
    return SYSLOG_SEVERITY[severity], metadata
