"""The logs table: partitioned by day on timestamp, idempotent on the stream entry id.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Why these indexes (figures in README, "Storage"): every btree costs ingest throughput,
so the spine keeps only what correctness and the time-ordered reads need:
- primary key (id, timestamp): lookup by id (the partition key must be part of it);
- unique (stream_id, timestamp): a redelivered stream entry is never stored twice
  (`ON CONFLICT DO NOTHING`); the drain derives a missing timestamp from the entry id,
  so the pair is deterministic for a given entry;
- (timestamp, id): time windows and newest-first keyset pages.
Filter and search indexes are chosen by the query migration, measured against ingest.
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE logs (
            id          bigserial,
            timestamp   timestamptz  NOT NULL,
            level       varchar(16)  NOT NULL,
            source      varchar(255),
            application varchar(255),
            message     text         NOT NULL,
            metadata    jsonb        NOT NULL DEFAULT '{}'::jsonb,
            created_at  timestamptz  NOT NULL DEFAULT now(),
            stream_id   varchar(41),
            PRIMARY KEY (id, timestamp)
        ) PARTITION BY RANGE (timestamp)
        """
    )
    op.execute("CREATE TABLE logs_default PARTITION OF logs DEFAULT")
    op.execute("CREATE UNIQUE INDEX logs_stream_id_key ON logs (stream_id, timestamp)")
    op.execute("CREATE INDEX logs_timestamp_id_idx ON logs (timestamp, id)")


def downgrade() -> None:
    op.execute("DROP TABLE logs")
