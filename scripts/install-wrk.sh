#!/usr/bin/env bash
# Debian's wrk, the HTTP load generator of bench/ingest.py. Idempotent: does nothing when
# it is there.
set -euo pipefail
if command -v wrk >/dev/null; then
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
wrk --version 2>&1 | head -1 || true
