"""Indexes for the query API, chosen by measuring ingest cost against the query patterns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

docs/indexes.md has the figures and the commands that produced them (bench/indexes.py,
bench/query.py at 10M logs). In short:
- (timestamp, id) INCLUDE (level, source, application) replaces 0001's (timestamp, id):
  pages use it as before, and /logs/stats becomes index-only scans (histogram 24 h:
  ~150 ms instead of ~300), for the ingest cost of the index it replaces;
- GIN on to_tsvector('simple', message) for `q`: without it a rare word over 24 h reads
  every row of the window (1.5-3 s); app/pipeline/filters.py uses the same expression;
- GIN (metadata jsonb_path_ops) for `meta.*` (containment): without it a rare value
  takes ~0.4 s over 24 h and 5-25 s over 14 days; with it a few ms.
Measured and left out: btrees on level/source/application (a time-bounded page is fast
through the time index already), BRIN on timestamp (keyset pages need the btree), GIN
jsonb_ops (costlier than jsonb_path_ops, only adds key-existence queries we do not
make), pg_trgm on message (twice the ingest CPU of the tsvector index).

Every index is built on the partitioned parent `logs`, so daily partitions created later
get it automatically. On a table already holding data it is built partition by partition
with CREATE INDEX CONCURRENTLY and then attached, so ingest is never blocked for the
length of a build (a plain CREATE INDEX on the parent would lock out writes meanwhile).
"""

from alembic import op
from sqlalchemy import text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (parent index name, suffix for the partitions' index names, definition after ON <table>)
INDEXES = (
    (
        "logs_timestamp_id_cover_idx",
        "ts_cover_idx",
        "(timestamp, id) INCLUDE (level, source, application)",
    ),
    ("logs_message_fts_idx", "message_fts_idx", "USING gin (to_tsvector('simple', message))"),
    ("logs_metadata_path_idx", "metadata_path_idx", "USING gin (metadata jsonb_path_ops)"),
)


def _partitions(conn) -> list[str]:
    return list(
        conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'logs'::regclass ORDER BY c.relname"
            )
        ).scalars()
    )


def _with_index(conn, parent_index: str) -> set[str]:
    """Partitions that already have an index attached to `parent_index`."""
    return set(
        conn.execute(
            text(
                "SELECT t.relname FROM pg_inherits i "
                "JOIN pg_index x ON x.indexrelid = i.inhrelid "
                "JOIN pg_class t ON t.oid = x.indrelid "
                "WHERE i.inhparent = to_regclass(:name)"
            ),
            {"name": parent_index},
        ).scalars()
    )


def _create_online(name: str, suffix: str, definition: str) -> None:
    """Create a partitioned index without blocking writes: the parent's index ON ONLY
    (invalid, instant), each partition's CONCURRENTLY, attached one by one; the parent's
    becomes valid when the last is attached. Safe to re-run after an interruption."""
    conn = op.get_bind()
    op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON ONLY logs {definition}")
    for partition in sorted(set(_partitions(conn)) - _with_index(conn, name)):
        child = f"{partition}_{suffix}"[:63]
        # A build interrupted earlier leaves an invalid index behind: start it again.
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {child}")
        op.execute(f"CREATE INDEX CONCURRENTLY {child} ON {partition} {definition}")
        op.execute(f"ALTER INDEX {name} ATTACH PARTITION {child}")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, suffix, definition in INDEXES:
            _create_online(name, suffix, definition)
    # Superseded by the covering index (same keys); dropping is quick.
    op.execute("DROP INDEX IF EXISTS logs_timestamp_id_idx")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS logs_timestamp_id_idx ON logs (timestamp, id)")
    for name, _, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
