"""Loki push (`POST /loki/api/v1/push`): JSON or protobuf bodies as intake items.

Protobuf is what Promtail and Alloy send (snappy-compressed, `application/x-protobuf`);
JSON is what most libraries send. Both carry streams of labels, each with entries of a
nanosecond timestamp, a line and optional structured metadata. The protobuf messages
(Loki's `pkg/push/push.proto`) are read with the small wire reader in `protowire`:

    PushRequest   { repeated Stream streams = 1; }
    Stream        { string labels = 1; repeated Entry entries = 2; }     // labels: {a="b"}
    Entry         { Timestamp timestamp = 1; string line = 2; repeated LabelPair sm = 3; }
    Timestamp     { int64 seconds = 1; int32 nanos = 2; }
    LabelPair     { string name = 1; string value = 2; }
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson

from app.pipeline.intake import Invalid
from app.receivers import protowire as pw
from parsers.fields import normalize_level

APPLICATION_LABELS = ("app", "service_name", "job")
SOURCE_LABELS = ("host", "instance")
LEVEL_LABELS = ("level", "detected_level", "severity")  # python-logging-loki: severity

_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PushError(ValueError):
    """The body as a whole is not a push request (Loki answers 400 with this text)."""


def parse_labels(text: str) -> dict[str, str]:
    """`{app="web", host="a\\"b"}` as a dict; ValueError if it is not a label set."""
    inner = text.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        raise ValueError(f'labels {text[:100]!r} are not a {{name="value"}} set')
    inner, labels, pos = inner[1:-1], {}, 0
    while pos < len(inner) and inner[pos:].strip():
        match = _LABEL.match(inner, pos)
        if match is None:
            raise ValueError(f'labels {text[:100]!r} are not a {{name="value"}} set')
        labels[match.group(1)] = re.sub(r"\\(.)", _unescape, match.group(2))
        pos = match.end()
    return labels


def _unescape(match: re.Match) -> str:
    return _ESCAPES.get(match.group(1), match.group(1))


def from_ns(ns: int) -> datetime:
    """Nanoseconds since the epoch as a UTC datetime (to the microsecond)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def entry_item(labels: dict, ns: int, line: str, structured: dict) -> dict:
    """One entry as LogSchema input: well-known labels become fields, all are kept."""
    both = {**labels, **structured}
    metadata = {"labels": labels, "format": "loki"}
    try:
        timestamp = from_ns(ns)
    except OverflowError:  # outside years 1-9999: stored at its received time, as a time
        timestamp, metadata["original_timestamp"] = None, str(ns)  # past MAX_FUTURE_SECONDS is
    item = {
        "timestamp": timestamp,
        "message": line,
        "application": _first(both, APPLICATION_LABELS),
        "source": _first(both, SOURCE_LABELS),
        "metadata": metadata,
    }
    level = normalize_level(_first(both, LEVEL_LABELS))
    if level:  # Loki's detected_level can be "unknown": keep the label, use the default
        item["level"] = level
    if structured:
        item["metadata"]["structured_metadata"] = structured
    return item


def _first(labels: dict, names: tuple[str, ...]) -> str | None:
    return next((labels[n] for n in names if labels.get(n)), None)


def decode_json(body: bytes) -> list[dict | Invalid]:
    """A JSON push body (`{"streams": [{"stream": {...}, "values": [[ns, line, {}]]}]}`)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PushError(f"error parsing push request: {exc}") from None
    streams = data.get("streams") if isinstance(data, dict) else None
    if not isinstance(streams, list):
        raise PushError('error parsing push request: expected {"streams": [...]}')
    return [item for stream in streams for item in _json_stream(stream)]


def _json_stream(stream) -> list[dict | Invalid]:
    if not isinstance(stream, dict) or not isinstance(stream.get("values"), list):
        return [Invalid({"_stream": ['a stream needs "stream" labels and "values"']})]
    labels = stream.get("stream") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return [Invalid({"_stream": ["stream labels must map names to strings"]})] * len(
            stream["values"]
        )
    return [_json_value(labels, value) for value in stream["values"]]


def _json_value(labels: dict, value) -> dict | Invalid:
    if not isinstance(value, list) or len(value) not in (2, 3):
        return Invalid({"_entry": ["an entry is [timestamp_ns, line] or [ts, line, {metadata}]"]})
    ns, line, structured = value[0], value[1], value[2] if len(value) == 3 else {}
    try:
        ns = int(ns)
    except (TypeError, ValueError):  # no repr: the value may be nested past the stack
        shown = repr(value[0])[:100] if isinstance(value[0], str) else type(value[0]).__name__
        return Invalid({"timestamp": [f"not a nanosecond timestamp: {shown}"]})
    if not isinstance(line, str) or not isinstance(structured, dict):
        return Invalid({"_entry": ["the line must be a string, structured metadata an object"]})
    if not all(isinstance(v, str | int | float | bool) for v in structured.values()):
        return Invalid({"_entry": ["structured metadata values must be strings"]})
    return entry_item(labels, ns, line, {k: str(v) for k, v in structured.items()})


def decode_protobuf(body: bytes) -> list[dict | Invalid]:
    """A protobuf PushRequest: complete streams decode even when a later one is cut."""
    streams, damage = pw.split(body, 1)
    items = []
    for raw in streams:
        try:
            items.extend(_pb_stream(raw))
        except (pw.WireError, ValueError) as exc:
            items.append(Invalid({"_stream": [f"undecodable stream: {exc}"]}))
    if damage:
        items.append(Invalid({"_stream": [f"push request cut or corrupt: {damage}"]}))
    return items


def _pb_stream(raw: bytes) -> list[dict | Invalid]:
    labels, entries = "", []
    for number, _, value in pw.fields(raw):
        if number == 1:
            labels = pw.string(value)
        elif number == 2:
            entries.append(value)
    parsed = parse_labels(labels)
    return [_pb_entry(parsed, entry) for entry in entries]


def _pb_entry(labels: dict, raw: bytes) -> dict | Invalid:
    ns, line, structured = 0, "", {}
    try:
        for number, _, value in pw.fields(raw):
            if number == 1:
                ns = _pb_timestamp(value)
            elif number == 2:
                line = pw.string(value)
            elif number == 3:
                name, text = _pb_pair(value)
                structured[name] = text
    except pw.WireError as exc:
        return Invalid({"_entry": [f"undecodable entry: {exc}"]})
    return entry_item(labels, ns, line, structured)


def _pb_timestamp(raw) -> int:
    seconds = nanos = 0
    for number, _, value in pw.fields(raw):
        if number == 1:
            seconds = _signed(value)
        elif number == 2:
            nanos = _signed(value)
    return seconds * 1_000_000_000 + nanos


def _pb_pair(raw) -> tuple[str, str]:
    name = text = ""
    for number, _, value in pw.fields(raw):
        if number == 1:
            name = pw.string(value)
        elif number == 2:
            text = pw.string(value)
    return name, text


def _signed(value) -> int:
    if not isinstance(value, int):
        raise pw.WireError("expected a varint")
    return value - (1 << 64) if value >= 1 << 63 else value
