"""`SLUICE_ENV=production` without keys: every process of the Procfile refuses to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack import ROOT, free_port, procfile

PROCESSES = ["web", "worker", "beat", "flower", "syslog", "release"]


@pytest.mark.parametrize("name", PROCESSES)
def test_every_process_refuses_to_start_without_keys(name, settings, tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLUICE_", "FLOWER_BASIC_AUTH"))
    }
    env.update(
        SLUICE_ENV="production",
        DATABASE_URL=settings.database_url.replace("postgresql+psycopg2://", "postgresql://"),
        REDIS_URL=settings.redis_url,
        FLOWER_BASIC_AUTH="ops:secret",
        PORT=str(free_port()),
        FLOWER_PORT=str(free_port()),
        SYSLOG_PORT=str(free_port()),
        BEAT_SCHEDULE=str(tmp_path / "beat"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    done = subprocess.run(
        procfile()[name],
        shell=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-2000:]
    assert "SLUICE_INGEST_KEYS, SLUICE_READ_KEYS, SLUICE_ADMIN_KEYS or SLUICE_KEYS_FILE" in output
