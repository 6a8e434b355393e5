"""Cost as the work grows: ingest rows/s and the query p95s at several stored-row counts.

    python -m bench.growth [--sizes 1000000,10000000,30000000] [--backlog 20000]

For each size, a throwaway database is filled in the server (bench/fill.py: INSERT ...
SELECT FROM generate_series, spread over the RETENTION_DAYS daily partitions, then the
real migrations to head), settled (VACUUM ANALYZE), and measured:
- ingest: a backlog of `--backlog` logs is pushed to the stream as `POST /data/fast`
  would (`intake.submit`, 100 a batch), then drained by the drain's own loop
  (`tasks.drain.drain_stream`, one process): rows/s from the first read to the last
  commit, the median of `--ingest-runs` runs;
- queries: bench/query.py's cases (filtered page, stats without and with top lists,
  full text, ...), `--reps` of each through the app, p50/p95.
The database is dropped before the next size. The figures go to stdout, to
docs/perf/growth.md (a table) and docs/perf/growth.png (the plot). Daily partitions
should keep ingest flat as the table grows: the plot shows whether it does.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import query
from bench.common import isolated_settings, realistic_log
from bench.fill import Filled, fill

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "perf"
# The cases drawn in the plot (bench/query.py's names start with these).
PLOTTED = {
    "filtered page": "filtered page (level + source + 1 h)",
    "histogram": "stats without top lists (24 h, 5 m)",
    "stats with top lists": "stats with top lists (24 h, 5 m)",
    "full-text": "full text q (24 h)",
}


@dataclass
class Size:
    """What was measured at one stored-row count."""

    rows: int
    filled: Filled
    ingest: list[float]
    queries: dict[str, tuple[float, float, int]] = field(default_factory=dict)

    @property
    def ingest_rate(self) -> float:
        return statistics.median(self.ingest)


def push(settings, count: int, seed: int) -> None:
    """Put `count` logs on the stream as the fast ingest endpoint would, 100 a batch."""
    from app.pipeline import intake
    from app.pipeline.connections import redis_client

    r = redis_client(settings.redis_url)
    rng = random.Random(seed)
    for start in range(0, count, 100):
        batch = [realistic_log(rng) for _ in range(min(100, count - start))]
        receipt = intake.submit(r, settings, batch)
        assert len(receipt.ids) == len(batch), receipt.rejected


def drain_rate(settings, count: int, seed: int) -> float:
    """Rows/s of the drain's own loop storing a backlog of `count` logs."""
    from app.pipeline import stream
    from app.pipeline.connections import redis_client
    from tasks.drain import drain_stream

    push(settings, count, seed)
    r = redis_client(settings.redis_url)
    began = time.perf_counter()
    # Checked between chunks: nothing undelivered means the last chunk read is stored.
    stats = drain_stream(
        settings, f"growth-{os.getpid()}", 600, lambda: stream.lag(r, settings) == 0
    )
    elapsed = time.perf_counter() - began
    assert stats.stored == count, f"stored {stats.stored} of {count} ({stats})"
    return count / elapsed


def forget(settings) -> None:
    """Delete the run's Redis keys (they share its key prefix)."""
    from app.pipeline.connections import redis_client

    r = redis_client(settings.redis_url)
    for key in r.scan_iter(match=f"{settings.key_prefix}*", count=1000):
        r.delete(key)


def measure(rows: int, args) -> Size:
    """Fill a fresh database with `rows` logs, measure ingest and queries, drop it."""
    from app.pipeline.connections import engine

    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=args.days)
    name = f"sluice_bench_growth_{uuid.uuid4().hex[:8]}"
    url = query.sqlalchemy_url(name)
    query.admin(f'CREATE DATABASE "{name}"')
    settings = None
    try:
        print(f"{rows:,} rows over {args.days} days into {name}", flush=True)
        filled = fill(name, rows, start, end)
        print(f"  filled: {filled}", flush=True)
        query.settle(name)
        settings = isolated_settings(url, "sluice-bench-growth", retention_days=args.days)
        rates = []
        for run in range(args.ingest_runs):  # a few backlogs, no VACUUM between: as live
            rates.append(drain_rate(settings, args.backlog, seed=run))
        size = Size(rows, filled, rates)
        print(
            f"  ingest: {size.ingest_rate:,.0f} rows/s (median of "
            f"{', '.join(f'{x:,.0f}' for x in rates)}; {args.backlog:,} logs drained)",
            flush=True,
        )
        cases = query.query_cases(start, end, args.reps, seed=3)
        size.queries = query.time_queries(url, cases)
        query.report(size.queries)
        return size
    finally:
        if settings is not None:
            forget(settings)
        engine(url).dispose()
        query.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def label(case: str) -> str:
    """The short name of a query case, for the table and the plot."""
    return next((short for prefix, short in PLOTTED.items() if case.startswith(prefix)), case)


def markdown(sizes: list[Size], args, loads: tuple[float, float]) -> str:
    """docs/perf/growth.md: how it was run, then one row per size."""
    cases = list(sizes[0].queries)
    head = [
        "stored rows",
        "fill",
        "ingest rows/s",
        "ingest vs smallest",
        *(f"{label(c)} p95 ms" for c in cases),
    ]
    lines = [
        "# Cost as the work grows",
        "",
        f"`python -m bench.growth --sizes {args.sizes} --backlog {args.backlog}` "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores, "
        f"load average {loads[0]:.1f} at the start and {loads[1]:.1f} at the end"
        + (f"; {args.note}" if args.note else "")
        + ").",
        "",
        f"Rows spread evenly over the last {args.days} days, in daily partitions (bench/fill.py),"
        f" so the partition the drain writes into already holds ~1/{args.days} of them. Ingest: "
        f"{args.backlog:,} logs drained by `tasks.drain.drain_stream` (one process), median "
        f"of {args.ingest_runs} runs. Queries: bench/query.py's cases, {args.reps} runs "
        "each through the app; p95 in ms. Fill: server-side INSERT ... SELECT with the keys and "
        "indexes dropped, then rebuilt, then the later migrations.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for size in sizes:
        cells = [
            f"{size.rows:,}",
            f"{size.filled.total_s:.0f} s ({size.rows / size.filled.total_s:,.0f} rows/s)",
            f"{size.ingest_rate:,.0f}",
            f"{size.ingest_rate / sizes[0].ingest_rate:.2f}x",
            *(f"{size.queries[c][1]:.1f}" for c in cases),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n![growth](growth.png)\n"


def plot(sizes: list[Size], path: Path) -> None:
    """Ingest rows/s and the plotted query p95s against the stored rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [s.rows for s in sizes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(rows, [s.ingest_rate for s in sizes], "o-", color="tab:blue")
    left.set_ylim(bottom=0)
    left.set_title("ingest: drain of a fixed backlog")
    left.set_ylabel("rows/s")
    for case in sizes[0].queries:
        if label(case) != case:
            right.plot(rows, [s.queries[case][1] for s in sizes], "o-", label=label(case))
    right.set_ylim(bottom=0)
    right.set_title("query p95")
    right.set_ylabel("ms")
    right.legend(fontsize=8)
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xticks(rows, [f"{n / 1e6:g}M" for n in rows])
        axis.minorticks_off()
        axis.set_xlabel("stored rows")
        axis.grid(True, alpha=0.3)
    fig.suptitle("Sluice: cost as the work grows (daily partitions)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    """Measure every size, then write the table and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000,30000000")
    parser.add_argument("--days", type=int, default=14, help="the retention window")
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--ingest-runs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=24, help="runs of each query")
    parser.add_argument("--note", default="", help="said in growth.md (e.g. busy machine)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    counts = sorted(int(x) for x in args.sizes.split(","))
    loads = [os.getloadavg()[0]]
    sizes = [measure(rows, args) for rows in counts]
    loads.append(os.getloadavg()[0])
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(sizes, args, tuple(loads))
    (args.out / "growth.md").write_text(text)
    plot(sizes, args.out / "growth.png")
    print(text)
    largest = sizes[-1]
    rate = largest.rows / largest.filled.total_s
    print(
        f"fill at {largest.rows:,}: {rate:,.0f} rows/s; at that rate 30,000,000 rows take "
        f"~{30_000_000 / rate / 60:.0f} min (plus the smaller sizes; index builds grow a"
        " little faster than the rows)"
    )
    print(f"wrote {args.out / 'growth.md'} and {args.out / 'growth.png'}")


if __name__ == "__main__":
    main()
