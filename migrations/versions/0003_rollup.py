"""Counts of stored logs per minute (and per hour), kept by the drain, for /logs/stats.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

`app/pipeline/rollup.py` adds to these tables in the transaction that inserts the logs
(only the rows actually inserted), so they are exact; `/logs/stats` reads them instead of
scanning the window. Each row holds a count per level (n_trace ... n_critical). Three
grains, because one is not enough for the 24 h target (measured on synthetic counts at
the density of 10M logs over 14 days, ~230 distinct level x source x application keys a
minute, a row per level then: a 24 h histogram summed from them took ~100 ms):
- `logs_rollup`: minute x source x application, every filter the rollup answers;
- `logs_rollup_levels`: minute, the histogram without source/application filters
  (1,440 rows for 24 h; per level: 8,640 rows, ~3 ms);
- `logs_rollup_hourly`: hour x source x application, the top lists (whole hours here,
  the minutes around them from `logs_rollup`; per level: ~15 ms).
NULL sources and applications are keys like any other (NULLS NOT DISTINCT, PostgreSQL 15).

Existing logs are counted here, with writes to `logs` held off meanwhile (SHARE lock) so
no row is missed or counted twice. Workers running the code from before this revision
do not count what they store: stop them for the upgrade, or rebuild afterwards
(`python -m tasks.maintenance --rebuild-rollup`).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAMES = "source varchar(255), application varchar(255)"
COUNTS = ", ".join(
    f"n_{level} bigint NOT NULL"
    for level in ("trace", "debug", "info", "warn", "error", "critical")
)
SUMS = ", ".join(
    f"sum(n_{level})" for level in ("trace", "debug", "info", "warn", "error", "critical")
)
PER_LEVEL = ", ".join(
    f"count(*) FILTER (WHERE level = '{level}')"
    for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
)


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS logs_rollup (
            minute timestamptz NOT NULL, {NAMES}, {COUNTS},
            CONSTRAINT logs_rollup_key UNIQUE NULLS NOT DISTINCT (minute, source, application)
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS logs_rollup_hourly (
            hour timestamptz NOT NULL, {NAMES}, {COUNTS},
            CONSTRAINT logs_rollup_hourly_key
                UNIQUE NULLS NOT DISTINCT (hour, source, application)
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS logs_rollup_levels (
            minute timestamptz PRIMARY KEY, {COUNTS}
        )
        """
    )
    backfill()


def backfill() -> None:
    """Count every stored log (idempotent: the counts are replaced, not added to), in
    time order, as the drain adds them, so a window's counts sit on few pages."""
    op.execute("LOCK TABLE logs IN SHARE MODE")
    op.execute("TRUNCATE logs_rollup, logs_rollup_hourly, logs_rollup_levels")
    op.execute(
        "INSERT INTO logs_rollup SELECT date_bin('1 minute', timestamp, 'epoch'), source, "
        f"application, {PER_LEVEL} FROM logs GROUP BY 1, 2, 3 ORDER BY 1"
    )
    op.execute(
        "INSERT INTO logs_rollup_hourly SELECT date_bin('1 hour', minute, 'epoch'), source, "
        f"application, {SUMS} FROM logs_rollup GROUP BY 1, 2, 3 ORDER BY 1"
    )
    op.execute(
        f"INSERT INTO logs_rollup_levels SELECT minute, {SUMS} FROM logs_rollup "
        "GROUP BY 1 ORDER BY 1"
    )
    op.execute("ANALYZE logs_rollup, logs_rollup_hourly, logs_rollup_levels")


def downgrade() -> None:
    op.execute("DROP TABLE logs_rollup, logs_rollup_hourly, logs_rollup_levels")
