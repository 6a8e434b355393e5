"""The rollup's mark: the counts are added after the commit, about once a second.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Until 0004 each writer added its chunk's counts in the transaction that stored it; that
upsert cost the drain about a fifth of its time (docs/scaling.md). From here the drain
counts in catch-ups (`app.pipeline.rollup.catch_up`): the logs with ids above
`logs_rollup_mark.last_id` are added to the counts and the mark moves past them; stats
read the logs above the mark from `logs` itself, so they stay exact.

Every log stored so far was counted by its writer, so the mark starts at the highest id.
Workers running the code from before this revision would count their logs twice (once
themselves, once in a catch-up): stop them for the upgrade, or rebuild afterwards
(`python -m tasks.maintenance --rebuild-rollup`).
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS logs_rollup_mark (
            one boolean PRIMARY KEY DEFAULT true CONSTRAINT logs_rollup_mark_one_row CHECK (one),
            last_id bigint NOT NULL
        )
        """
    )
    # Writers wait meanwhile (SHARE lock), so the highest id is the last one counted.
    op.execute("LOCK TABLE logs IN SHARE MODE")
    op.execute(
        "INSERT INTO logs_rollup_mark (last_id) SELECT coalesce(max(id), 0) FROM logs "
        "ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id"
    )


LEVELS = ("trace", "debug", "info", "warn", "error", "critical")


def downgrade() -> None:
    """The code before this revision counts in each writer's transaction: first count
    the logs stored since the last catch-up (stop the workers first)."""
    counts = ", ".join(f"n_{v}" for v in LEVELS)
    per_level = ", ".join(f"count(*) FILTER (WHERE level = '{v.upper()}')" for v in LEVELS)
    sums = ", ".join(f"sum(n_{v})" for v in LEVELS)
    adding = ", ".join(f"n_{v} = r.n_{v} + excluded.n_{v}" for v in LEVELS)
    op.execute("LOCK TABLE logs IN SHARE MODE")
    op.execute(
        f"""
        CREATE TEMPORARY TABLE uncounted (minute, source, application, {counts})
        ON COMMIT DROP AS
        SELECT date_bin('1 minute', timestamp, 'epoch'), source, application, {per_level}
        FROM logs WHERE id > (SELECT last_id FROM logs_rollup_mark) GROUP BY 1, 2, 3
        """
    )
    for table, key, select in (
        ("logs_rollup", "ON CONSTRAINT logs_rollup_key", "SELECT * FROM uncounted"),
        (
            "logs_rollup_hourly",
            "ON CONSTRAINT logs_rollup_hourly_key",
            f"SELECT date_bin('1 hour', minute, 'epoch'), source, application, {sums} "
            "FROM uncounted GROUP BY 1, 2, 3",
        ),
        ("logs_rollup_levels", "(minute)", f"SELECT minute, {sums} FROM uncounted GROUP BY 1"),
    ):
        op.execute(f"INSERT INTO {table} AS r {select} ON CONFLICT {key} DO UPDATE SET {adding}")
    op.execute("DROP TABLE logs_rollup_mark")
