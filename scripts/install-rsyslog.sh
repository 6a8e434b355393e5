#!/usr/bin/env bash
# Debian's rsyslog (the omfwd forwarding test) and rsyslog-pgsql (bench/syslog.py's
# reference). Idempotent: does nothing when both are there.
set -euo pipefail
if command -v rsyslogd >/dev/null && [ -n "$(find /usr/lib -name ompgsql.so 2>/dev/null | head -1)" ]; then
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends rsyslog rsyslog-pgsql >/dev/null
rsyslogd -v | head -1
