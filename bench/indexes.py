"""What each candidate index costs the write path: ingest rows/s per index set.

    python -m bench.indexes                       defaults: 500k rows preloaded, 50k inserted,
                                                  3 rounds, every set
    python -m bench.indexes --sets baseline,fts   some sets only

A template database at revision 0001 is preloaded with realistic logs (COPY); for each
round and each index set, a copy of it is made (CREATE DATABASE ... TEMPLATE), the set's
indexes are built, and rows go in through the drain's write path (`app.pipeline.store.insert_logs`
in `write_in_commit_order`, 100 rows per transaction). Rounds interleave the sets so
machine noise spreads evenly; the median of the rounds is reported, with its ratio to the
0001 baseline measured in the same run. Every database made here is dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2

from bench.query import (
    Ingest,
    admin,
    create_rollup_tables,
    ingest_rate,
    load,
    migrate,
    server_dsn,
    settle,
    sqlalchemy_url,
)

# Statements run on the copy before timing; "logs" is the partitioned parent, so the
# partitions get each index too. The 0001 set is PK (id, timestamp), UNIQUE (stream_id,
# timestamp) and (timestamp, id).
SETS: dict[str, tuple[str, list[str]]] = {
    "baseline": ("0001 indexes (baseline)", []),
    "no_ts": (
        "0001 without (timestamp, id)",
        ["DROP INDEX logs_timestamp_id_idx"],
    ),
    "brin": (
        "0001 with BRIN(timestamp) instead of btree (timestamp, id)",
        [
            "DROP INDEX logs_timestamp_id_idx",
            "CREATE INDEX logs_timestamp_brin ON logs USING brin (timestamp)",
        ],
    ),
    "covering": (
        "0001 with (timestamp, id) INCLUDE (level, source, application)",
        [
            "DROP INDEX logs_timestamp_id_idx",
            "CREATE INDEX logs_timestamp_id_idx ON logs (timestamp, id) "
            "INCLUDE (level, source, application)",
        ],
    ),
    "btree3": (
        "+ btree (level, ts), (source, ts), (application, ts)",
        [
            "CREATE INDEX logs_level_ts ON logs (level, timestamp)",
            "CREATE INDEX logs_source_ts ON logs (source, timestamp)",
            "CREATE INDEX logs_application_ts ON logs (application, timestamp)",
        ],
    ),
    "composite": (
        "+ btree (source, level, ts), (application, level, ts)",
        [
            "CREATE INDEX logs_source_level_ts ON logs (source, level, timestamp)",
            "CREATE INDEX logs_application_level_ts ON logs (application, level, timestamp)",
        ],
    ),
    "gin_path": (
        "+ GIN (metadata jsonb_path_ops)",
        ["CREATE INDEX logs_metadata_path ON logs USING gin (metadata jsonb_path_ops)"],
    ),
    "gin_ops": (
        "+ GIN (metadata) default jsonb_ops",
        ["CREATE INDEX logs_metadata_ops ON logs USING gin (metadata)"],
    ),
    "fts": (
        "+ GIN to_tsvector('simple', message)",
        ["CREATE INDEX logs_message_fts ON logs USING gin (to_tsvector('simple', message))"],
    ),
    "trgm": (
        "+ GIN (message gin_trgm_ops)",
        [
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            "CREATE INDEX logs_message_trgm ON logs USING gin (message gin_trgm_ops)",
        ],
    ),
    "chosen": (
        "migration 0002: covering (timestamp, id) + tsvector GIN + jsonb_path_ops GIN",
        ["@head"],
    ),
}


def prepare(name: str, set_key: str) -> None:
    """Build index set `set_key` on database `name` (a fresh copy of the template)."""
    statements = SETS[set_key][1]
    if statements == ["@head"]:
        migrate(name, "head")
        statements = []
    conn = psycopg2.connect(server_dsn(name))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '256MB'")
        for sql in statements:
            cur.execute(sql)
    conn.close()
    settle(name)


def index_bytes(name: str) -> int:
    """Bytes of every index on the partitions of `logs`."""
    conn = psycopg2.connect(server_dsn(name))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT coalesce(sum(pg_indexes_size(inhrelid)), 0) FROM pg_inherits "
            "WHERE inhparent = 'logs'::regclass"
        )
        size = cur.fetchone()[0]
    conn.close()
    return int(size)


def measure(template: str, set_key: str, rows: int, at: datetime, seed: int) -> tuple[Ingest, int]:
    """(ingest, index bytes before inserting) for one set on a fresh copy of `template`."""
    from app.pipeline.connections import engine

    name = f"{template}_{set_key}"
    admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        prepare(name, set_key)
        size = index_bytes(name)
        rate = ingest_rate(sqlalchemy_url(name), rows, at, seed=seed)
        engine(sqlalchemy_url(name)).dispose()
        return rate, size
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    """Preload a template, then time every set over a few interleaved rounds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preload", type=int, default=500_000)
    parser.add_argument("--rows", type=int, default=50_000, help="rows inserted per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated set keys")
    args = parser.parse_args(argv)
    keys = [k for k in args.sets.split(",") if k]
    if "baseline" not in keys:
        keys.insert(0, "baseline")

    template = f"sluice_idx_{uuid.uuid4().hex[:8]}"
    end = datetime.now(UTC).replace(microsecond=0)
    admin(f'CREATE DATABASE "{template}"')
    try:
        migrate(template, "0001")
        create_rollup_tables(template)  # the write path counts into them
        seconds = load(template, args.preload, end - timedelta(days=2), end - timedelta(hours=1))
        print(f"template {template}: {args.preload:,} rows preloaded in {seconds:.0f} s")
        results: dict[str, list[Ingest]] = {k: [] for k in keys}
        sizes: dict[str, int] = {}
        measure(template, "baseline", args.rows // 5, end, seed=99)  # warm-up, not counted
        for round_number in range(args.rounds):
            order = keys[round_number % len(keys) :] + keys[: round_number % len(keys)]
            for key in order:
                result, sizes[key] = measure(template, key, args.rows, end, seed=round_number)
                results[key].append(result)
                print(f"  round {round_number + 1} {key:<10} {result}", flush=True)
        report(keys, results, sizes, args)
    finally:
        admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')


def report(keys: list[str], results: dict[str, list[Ingest]], sizes: dict, args) -> None:
    """Print the table docs/indexes.md quotes."""

    def rate(key: str) -> float:
        return statistics.median(r.rows_per_s for r in results[key])

    def cpu(key: str) -> float | None:
        samples = [r.backend_us_per_row for r in results[key] if r.backend_us_per_row]
        return statistics.median(samples) if samples else None

    base_rate, base_cpu, base_size = rate("baseline"), cpu("baseline"), sizes["baseline"]
    print(
        f"\ningest through the drain's write path, {args.rows:,} rows per measurement into a "
        f"table preloaded with {args.preload:,}; medians of {args.rounds} rounds"
    )
    print("| index set | rows/s | vs baseline | backend CPU us/row | vs baseline | index size |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in keys:
        cpu_cell = "n/a | n/a"
        if cpu(key) and base_cpu:
            cpu_cell = f"{cpu(key):.0f} | {cpu(key) / base_cpu:.2f}"
        print(
            f"| {SETS[key][0]} | {rate(key):,.0f} | {rate(key) / base_rate:.2f} | {cpu_cell} | "
            f"{sizes[key] / 2**20:.0f} MB ({(sizes[key] - base_size) / 2**20:+.0f}) |"
        )


if __name__ == "__main__":
    main()
