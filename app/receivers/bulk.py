"""Elasticsearch `_bulk`: NDJSON action and source lines as intake items.

    {"create": {"_index": "logs-web"}}
    {"@timestamp": "2026-11-28T10:00:00Z", "message": "hi", "log": {"level": "warn"}}

`index` and `create` take the following line as the document; `delete` and `update`
are refused per item (Sluice is append-only). ECS fields become the log's own
(`@timestamp`, `message`, `log.level`, `host.name`, `service.name`, nested or dotted),
everything else in the document goes to metadata with `_index` (and `_id` if given).
An action line whose next line is another action has lost its source: that item alone
is refused. https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-bulk.html
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from app.pipeline.intake import Invalid

OPS = ("index", "create", "delete", "update")
TIMESTAMP = ("@timestamp", "timestamp")
MESSAGE = ("message", "log", "msg")  # Fluent Bit's tail and Docker inputs call it `log`
LEVEL = ("log.level", "level", "severity")
SOURCE = ("host.name", "hostname", "host")
APPLICATION = ("service.name", "app", "application")


@dataclass(slots=True)
class Op:
    """One bulk item: its action, target index and id, and what to enqueue."""

    action: str
    index: str | None
    id: str | None
    item: dict | Invalid


def decode(body: bytes, default_index: str | None) -> list[Op]:
    """Every action of an NDJSON bulk body, each with its document as an item."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    ops, pos = [], 0
    while pos < len(lines):
        op, pos = _next_op(lines, pos, default_index)
        ops.append(op)
    return ops


def _next_op(lines: list[bytes], pos: int, default_index: str | None) -> tuple[Op, int]:
    action = _action(lines[pos])
    if action is None:
        return Op("index", default_index, None, _refused("malformed action/metadata line")), pos + 1
    name, meta = action
    index, doc_id = meta.get("_index") or default_index, meta.get("_id")
    if name == "delete":
        return Op(name, index, doc_id, _refused("Sluice is append-only: no deletes")), pos + 1
    has_source = pos + 1 < len(lines) and _action(lines[pos + 1]) is None
    if not has_source:
        return Op(name, index, doc_id, _refused(f"the {name} action has no source line")), pos + 1
    if name == "update":
        return Op(name, index, doc_id, _refused("Sluice is append-only: no updates")), pos + 2
    return Op(name, index, doc_id, document_item(lines[pos + 1], index, doc_id)), pos + 2


def _action(line: bytes) -> tuple[str, dict] | None:
    """(action, its metadata) if `line` is an action line, else None."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and len(data) == 1:
        ((name, meta),) = data.items()
        if name in OPS and isinstance(meta, dict):
            return name, meta
    return None


def _refused(reason: str, kind: str = "illegal_argument_exception") -> Invalid:
    return Invalid({"_bulk": [f"{kind}: {reason}"]})


def document_item(line: bytes, index: str | None, doc_id: str | None) -> dict | Invalid:
    """A source document as LogSchema input, ECS fields mapped, the rest in metadata."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return _refused(f"failed to parse the document: {exc}", "document_parsing_exception")
    if not isinstance(doc, dict):
        return _refused("the document is not a JSON object", "document_parsing_exception")
    item = {
        "timestamp": _take_any(doc, TIMESTAMP),
        "message": _take_any(doc, MESSAGE),
        "level": _take_any(doc, LEVEL),
        "source": _take_any(doc, SOURCE),
        "application": _take_any(doc, APPLICATION),
    }
    if item["message"] is None:
        return _refused("the document has no message field", "document_parsing_exception")
    item = {k: v for k, v in item.items() if v is not None}
    extra = {"_index": index, **({"_id": doc_id} if doc_id is not None else {})}
    item["metadata"] = {**doc, **extra, "format": "bulk"}
    return item


def _take_any(doc: dict, names: tuple[str, ...]):
    for name in names:
        value = take(doc, name)
        if value is not None:
            return value
    return None


def take(doc: dict, dotted: str):
    """Pop `a.b` from `doc` as the key "a.b" or the path a -> b (leaving no empty `a`)."""
    if dotted in doc and not isinstance(doc[dotted], dict):
        return doc.pop(dotted)
    head, _, rest = dotted.partition(".")
    if not rest:
        return None
    inner = doc.get(head)
    if not isinstance(inner, dict):
        return None
    value = take(inner, rest)
    if not inner:
        del doc[head]
    return value
