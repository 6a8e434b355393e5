"""Counts of stored logs per minute (and per hour), kept by the drain, for /logs/stats.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

`app/pipeline/rollup.py` adds to these tables in the transaction that inserts the logs
(only the rows actually inserted), so they are exact; `/logs/stats` reads them instead of
scanning the window. Three grains, because one is not enough for the 24 h target
(measured at the density of 10M logs over 14 days, ~230 distinct keys per minute):
- `logs_rollup`: minute x level x source x application, every filter the rollup answers
  (a 24 h histogram from it alone: ~100 ms, 330k rows to sum);
- `logs_rollup_levels`: minute x level, the histogram without source/application filters
  (8,640 rows for 24 h: ~3 ms);
- `logs_rollup_hourly`: hour x level x source x application, the top lists (full hours
  here, the edges from `logs_rollup`: ~15 ms).
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

KEY = "level varchar(16) NOT NULL, source varchar(255), application varchar(255)"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS logs_rollup (
            minute timestamptz NOT NULL, {KEY}, n bigint NOT NULL,
            CONSTRAINT logs_rollup_key
                UNIQUE NULLS NOT DISTINCT (minute, level, source, application)
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE IF NOT EXISTS logs_rollup_hourly (
            hour timestamptz NOT NULL, {KEY}, n bigint NOT NULL,
            CONSTRAINT logs_rollup_hourly_key
                UNIQUE NULLS NOT DISTINCT (hour, level, source, application)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS logs_rollup_levels (
            minute timestamptz NOT NULL, level varchar(16) NOT NULL, n bigint NOT NULL,
            PRIMARY KEY (minute, level)
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
        "INSERT INTO logs_rollup SELECT date_bin('1 minute', timestamp, 'epoch'), level, "
        "source, application, count(*) FROM logs GROUP BY 1, 2, 3, 4 ORDER BY 1"
    )
    op.execute(
        "INSERT INTO logs_rollup_hourly SELECT date_bin('1 hour', minute, 'epoch'), level, "
        "source, application, sum(n) FROM logs_rollup GROUP BY 1, 2, 3, 4 ORDER BY 1"
    )
    op.execute(
        "INSERT INTO logs_rollup_levels SELECT minute, level, sum(n) FROM logs_rollup "
        "GROUP BY 1, 2 ORDER BY 1"
    )
    op.execute("ANALYZE logs_rollup, logs_rollup_hourly, logs_rollup_levels")


def downgrade() -> None:
    op.execute("DROP TABLE logs_rollup, logs_rollup_hourly, logs_rollup_levels")
