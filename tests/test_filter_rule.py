"""The one filter rule, three ways: Filters.match (the live fan-out), Filters.where (the
query API and the live catch-up, in real PostgreSQL) and the page's mirror in
app/static/js/filters.js (run by node), all on one table of cases."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from app.pipeline import store
from app.pipeline.filters import FilterSchema, LiveFilterSchema, search_messages
from app.pipeline.record import logs, to_json

ROOT = Path(__file__).resolve().parent.parent
TABLE = json.loads((ROOT / "tests/data/filter_cases.json").read_text())
CASES = TABLE["cases"]
IDS = [json.dumps(case["filters"], sort_keys=True) for case in CASES]


def _as_query(filters: dict) -> dict:
    return {k: v if isinstance(v, list) else [v] for k, v in filters.items()}


@pytest.fixture
def stored(db) -> dict[str, dict]:
    """The table's logs, stored; name -> its JSON form."""
    stamp = datetime(2026, 11, 30, 12, tzinfo=UTC)
    rows = [
        {**log, "timestamp": stamp, "stream_id": f"rule-{name}"}
        for name, log in TABLE["logs"].items()
    ]
    out = store.insert_logs(db, rows)
    db.commit()
    by_stream = {row["stream_id"]: to_json({**row}) for row in out}
    return {name: by_stream[f"rule-{name}"] for name in TABLE["logs"]}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_python_rule(case, stored):
    filters = LiveFilterSchema().load(_as_query(case["filters"]))
    got = sorted(name for name, log in stored.items() if filters.match(log))
    assert got == case["match"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sql_rule(case, stored, db):
    filters = FilterSchema.filters(FilterSchema().load(_as_query(case["filters"])))
    ids = set(db.execute(select(logs.c.id).where(filters.where())).scalars())
    assert sorted(name for name, log in stored.items() if log["id"] in ids) == case["match"]


def test_js_rule(stored, tmp_path):
    """The browser's `matches` gives the same answers on the cases the page can send."""
    node = shutil.which("node")
    assert node, "node is needed to run the page's filter rule"
    for name in ("filters.js", "dom.js"):
        shutil.copy(ROOT / "app/static/js" / name, tmp_path / name)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    cases = [c for c in CASES if c.get("js")]
    (tmp_path / "cases.json").write_text(json.dumps({"cases": cases, "logs": stored}))
    script = tmp_path / "run.js"
    script.write_text(
        'import { readFileSync } from "node:fs";\n'
        'import { matches } from "./filters.js";\n'
        'const { cases, logs } = JSON.parse(readFileSync(new URL("./cases.json", '
        "import.meta.url)));\n"
        "const out = cases.map((c) => Object.keys(logs).filter((n) => matches(c.filters, "
        "logs[n])).sort());\n"
        "console.log(JSON.stringify(out));\n"
    )
    result = subprocess.run([node, str(script)], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [c["match"] for c in cases]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("payment", [True, False, False]),
        ('"order 43"', [False, True, False]),
        ("order -paid", [True, False, False]),
        ("disk or paid", [False, True, True]),
    ],
)
def test_full_text_live_twin_is_the_query_rule(q, expected, stored, db):
    """`q` on the live view asks PostgreSQL with the expression `where` uses."""
    messages = [stored[n]["message"] for n in ("a", "b", "c")]
    assert search_messages(db, q, messages) == expected
    filters = FilterSchema.filters(FilterSchema().load({"q": [q]}))
    ids = set(db.execute(select(logs.c.id).where(filters.where())).scalars())
    assert [stored[n]["id"] in ids for n in ("a", "b", "c")] == expected


def test_live_filter_is_the_query_filter_without_the_window():
    live, query = LiveFilterSchema(), FilterSchema()
    assert set(query.fields) - set(live.fields) == {"since", "until"}
    with pytest.raises(Exception, match="Unknown parameter"):
        live.load({"since": ["15m"]})
