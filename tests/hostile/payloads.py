"""Hostile values, and requests to every ingest face that mix them with valid logs.

A hostile value is kept as the bytes it is on the wire (a JSON value, or raw text), so it
can be what no encoder would write: invalid UTF-8, a lone surrogate, a raw NUL, a number
no double holds. A valid log carries a marker (`hv-<run>-<n>!`) whose fate the ledger
follows from the answer's receipt to the `logs` table.
"""

from __future__ import annotations

import gzip
import time
import zlib
from dataclasses import dataclass, field
from functools import cache

import cramjam
import orjson
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from tests.receivers.lokiproto import push_request

HUGE = 10_000_000  # "10 MB lines"
DEEP = 1_000

# Name -> a JSON value as raw bytes. Some are not JSON at all (that is the point).
JSON_VALUES: dict[str, bytes] = {
    "nul_escape": b'"a\\u0000b"',
    "nul_raw": b'"a\x00b"',
    "bad_utf8": b'"\xff\xfe\xc3("',
    "lone_surrogate": b'"\\ud800x"',
    "low_surrogate": b'"\\udc00"',
    "surrogate_utf8": b'"\xed\xa0\x80"',
    "u2028": '"a\u2028b\u2029c"'.encode(),
    "u2028_escape": b'"a\\u2028b\\u2029"',
    "crlf_escape": b'"a\\r\\nb\\r\\n"',
    "controls": b'"\\u001b[31m\\u0007\\u0008"',
    "bidi_bom": '"\u202e\ufeffx"'.encode(),
    "long_70k": b'"' + b"k" * 70_000 + b'"',
    "huge_10mb": b"HUGE",  # built lazily: see json_value
    "deep_array": b"[" * DEEP + b"]" * DEEP,
    "deep_object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep_40": b"[" * 40 + b"]" * 40,
    "int_10e400": b"1" + b"0" * 400,
    "int_neg_2e70": str(-(2**70)).encode(),
    "int_2e64": str(2**64).encode(),
    "float_1e400": b"1e400",
    "float_neg_1e400": b"-1e400",
    "nan": b"NaN",
    "year_0": b'"0000-01-01T00:00:00Z"',
    "year_1": b'"0001-01-01T00:00:00Z"',
    "year_9999": b'"9999-12-31T23:59:59.999999Z"',
    "year_10000": b'"10000-01-01T00:00:00Z"',
    "epoch_9999": b"253402300799",
    "epoch_negative": b"-62135596800",
    "epoch_ms_huge": b"99999999999999999",
    "empty": b'""',
    "null": b"null",
    "true": b"true",
    "array": b"[1,2]",
    "object": b'{"k":"v"}',
}

# Name -> a raw line (text/plain, logplex messages, Loki lines).
RAW_LINES: dict[str, bytes] = {
    "nul": b"a\x00b",
    "bad_utf8": b"\xff\xfe\xc3(",
    "surrogate_utf8": b"\xed\xa0\x80 x",
    "u2028": "a\u2028b\u2029c".encode(),
    "cr": b"a\rb",
    "controls": b"\x1b[31m\x07\x08",
    "long_70k": b"k" * 70_000,
    "huge_10mb": b"HUGE",
    "deep_json": b"[" * DEEP + b"]" * DEEP,
    "deep_json_object": b'{"message":' * DEEP + b'"x"' + b"}" * DEEP,
    "json_big_int": b'{"message": "m", "n": 1' + b"0" * 400 + b"}",
    "json_neg_int": b'{"message": "m", "n": ' + str(-(2**70)).encode() + b"}",
    "json_year_0": b'{"message": "m", "timestamp": "0000-01-01T00:00:00Z"}',
    "json_year_9999": b'{"message": "m", "timestamp": "9999-12-31T23:59:59Z"}',
    "syslog_year_0": b"<34>1 0000-01-01T00:00:00Z host app - - - m",
    "syslog_year_9999": b"<34>1 9999-12-31T23:59:59Z host app - - - m",
    "syslog_pri_huge": b"<" + b"9" * 400 + b">1 2026-01-01T00:00:00Z h a - - - m",
    "clf_year_0": b'1.2.3.4 - - [01/Jan/0000:00:00:00 +0000] "GET / HTTP/1.1" 200 1',
    "only_spaces_tabs": b" \t \x0b\x0c ",
    "bidi": "\u202e\ufeff".encode(),
}

FIELDS = ("message", "level", "source", "application", "timestamp", "metadata_value")
FIELDS += ("metadata_key", "extra", "whole")

# JSON values a whole JSON document cannot hold (orjson refuses the document).
NOT_JSON = {
    "nul_raw",
    "bad_utf8",
    "lone_surrogate",
    "low_surrogate",
    "surrogate_utf8",
    "int_10e400",
    "float_1e400",
    "float_neg_1e400",
    "nan",
    "deep_array",
    "deep_object",
}


@cache
def _huge(quoted: bool) -> bytes:
    return b'"' + b"x" * HUGE + b'"' if quoted else b"x" * HUGE


def json_value(name: str) -> bytes:
    return _huge(True) if name == "huge_10mb" else JSON_VALUES[name]


def raw_line(name: str) -> bytes:
    return _huge(False) if name == "huge_10mb" else RAW_LINES[name]


@dataclass(frozen=True)
class Hostile:
    """One hostile item: which value, and where it goes."""

    value: str
    where: str = "message"


@dataclass
class Built:
    """A request body for one face, and which of its items are valid logs."""

    face: str
    path: str
    content_type: str
    body: bytes
    valid: dict[int, str]  # item index -> marker
    count: int  # items in the request
    decodable: bool = True  # the body is one well-formed document of its format
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    items: list = field(default_factory=list)  # what was sent, told (for failure messages)
    inflated: int = 0  # its size once the protocol's own compression (snappy) is undone


def marker(run: str, n: int) -> str:
    return f"hv-{run}-{n:07d}!"


def _now_ns() -> int:
    return time.time_ns()


def valid_json(mark: str, n: int) -> bytes:
    log = {"message": mark, "level": "INFO", "source": "hostile", "metadata": {"n": n}}
    if n % 3 == 0:
        log["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return orjson.dumps(log)


def hostile_json(h: Hostile) -> bytes:
    value = json_value(h.value)
    if h.where == "whole":
        return value
    if h.where == "metadata_key":
        return b'{"message":"hostile","metadata":{' + value + b":1}}"
    if h.where == "metadata_value":
        return b'{"message":"hostile","metadata":{"k":' + value + b"}}"
    if h.where == "extra":
        return b'{"message":"hostile","extra_field":' + value + b"}"
    if h.where == "message":
        return b'{"message":' + value + b',"level":"INFO"}'
    return b'{"message":"hostile","' + h.where.encode() + b'":' + value + b"}"


def _decodable(items) -> bool:
    """False when a hostile value makes the whole document something orjson refuses."""
    for item in items:
        if isinstance(item, Hostile):
            if item.value in NOT_JSON:
                return False
            if item.where == "metadata_key" and not json_value(item.value).startswith(b'"'):
                return False
    return True


def build(face: str, items: list, run: str, first: int) -> Built:
    """`items`: Hostile, or None for a valid log (numbered from `first`)."""
    valid, n = {}, first
    marks = []
    for index, item in enumerate(items):
        if item is None:
            valid[index] = marker(run, n)
            marks.append((n, valid[index]))
            n += 1
        else:
            marks.append(None)
    built = BUILDERS[face](items, marks, valid)
    built.face, built.items = face, [i and (i.value, i.where) for i in items]
    return built


def _json_parts(items, marks) -> list[bytes]:
    return [
        valid_json(m[1], m[0]) if m else hostile_json(item)
        for item, m in zip(items, marks, strict=True)
    ]


def _data_json(path):
    def b(items, marks, valid):
        parts = _json_parts(items, marks)
        body = parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"
        return Built("json", path, "application/json", body, valid, len(items), _decodable(items))

    return b


def _data_ndjson(path):
    def b(items, marks, valid):
        body = b"\n".join(_json_parts(items, marks)) + b"\n"
        return Built("ndjson", path, "application/x-ndjson", body, valid, len(items))

    return b


def _text_line(item, m) -> bytes:
    return f"{m[1]} a valid plain line".encode() if m else raw_line(item.value)


def _data_text(path):
    def b(items, marks, valid):
        lines = [_text_line(i, m) for i, m in zip(items, marks, strict=True)]
        # Blank lines are skipped by the server: a hostile blank shifts no index, so
        # hostile lines here are never blank (only_spaces_tabs is, and is kept last).
        order = [i for i, line in enumerate(lines) if line.decode("utf-8", "replace").strip()]
        valid = {order.index(i): mark for i, mark in valid.items()}
        body = b"\n".join(lines) + b"\n"
        return Built("text", path, "text/plain; charset=utf-8", body, valid, len(order))

    return b


def _logplex(items, marks, valid):
    frames = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()).encode()
    for item, m in zip(items, marks, strict=True):
        parts = {"pri": b"<190>1", "ts": stamp, "host": b"host", "app": b"app", "proc": b"web.1"}
        message = m[1].encode() if m else b"hostile"
        if not m:
            value = raw_line(item.value)
            if item.where in ("timestamp", "level"):
                value = {"syslog_year_0": b"0000-01-01T00:00:00+00:00"}.get(item.value, value)
                parts["ts"] = value
            elif item.where in ("source", "application"):
                parts["host" if item.where == "source" else "app"] = value
            else:
                message = value
        frame = b" ".join((*parts.values(), b"-", message))
        frames.append(str(len(frame)).encode() + b" " + frame)
    return Built(
        "heroku",
        "/heroku/logs?app=hostile",
        "application/logplex-1",
        b"".join(frames),
        valid,
        len(items),
        extra_headers=[(b"Logplex-Msg-Count", str(len(items)).encode())],
    )


def _loki_json(items, marks, valid):
    now = _now_ns()
    entries, tail = [], []
    for item, m in zip(items, marks, strict=True):
        if m:
            entries.append(b'["%d",%s]' % (now, orjson.dumps(m[1])))
            continue
        value = json_value(item.value)
        if item.where == "timestamp":
            entries.append(b"[" + value + b',"line"]')
        elif item.where == "metadata_value":
            entries.append(b'["%d","line",{"k":%s}]' % (now, value))
        elif item.where == "source":  # a stream label: its own stream, last
            tail.append(b'{"stream":{"app":' + value + b'},"values":[["%d","l"]]}' % now)
        else:
            entries.append(b'["%d",%s]' % (now, value))
    # The label streams come last, so the first stream's entries keep their indices.
    order = [i for i, item in enumerate(items) if item is None or item.where != "source"]
    valid = {order.index(i): mark for i, mark in valid.items()}
    streams = [b'{"stream":{"app":"hostile"},"values":[' + b",".join(entries) + b"]}", *tail]
    body = b'{"streams":[' + b",".join(streams) + b"]}"
    return Built(
        "loki-json",
        "/loki/api/v1/push",
        "application/json",
        body,
        valid,
        len(items),
        _decodable(items),
    )


def _pb_text(name: str) -> tuple[str, bytes | None]:
    """A protobuf string: the text, and the raw bytes to put in its place afterwards (same
    length) when the value is not valid UTF-8, which protobuf's encoder refuses."""
    raw = raw_line(name)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return "@" * len(raw), raw


YEAR_0_S, YEAR_10000_S = -62167219200, 253402300800


def _loki_proto(items, marks, valid):
    now, entries, swaps = _now_ns(), [], []
    for item, m in zip(items, marks, strict=True):
        if m:
            entries.append((now, m[1], {}))
            continue
        text, raw = _pb_text(item.value)
        if raw:
            swaps.append((text.encode(), raw))
        if item.where == "timestamp":
            ns = {0: YEAR_0_S, 1: YEAR_10000_S, 2: -1}[len(text) % 3] * 1_000_000_000
            entries.append((ns, "line", {}))
        elif item.where == "metadata_value":
            entries.append((now, "line", {"k": text}))
        else:
            entries.append((now, text, {}))
    body = push_request([('{app="hostile"}', entries)])
    for placeholder, raw in swaps:
        body = body.replace(placeholder, raw, 1)
    return Built(
        "loki-proto",
        "/loki/api/v1/push",
        "application/x-protobuf",
        bytes(cramjam.snappy.compress_raw(body)),
        valid,
        len(items),
        inflated=len(body),  # MAX_CONTENT_LENGTH bounds the body once snappy is undone
    )


def _otlp_record(item, m, now) -> dict | bytes:
    if m:
        return {"timeUnixNano": str(now), "severityText": "INFO", "body": {"stringValue": m[1]}}
    value = json_value(item.value)
    slot = {
        "timestamp": b'{"timeUnixNano":' + value + b',"body":{"stringValue":"x"}}',
        "level": b'{"severityText":' + value + b',"body":{"stringValue":"x"}}',
        "source": b'{"severityNumber":' + value + b',"body":{"stringValue":"x"}}',
        "metadata_value": b'{"attributes":[{"key":"k","value":{"stringValue":'
        + value
        + b'}}],"body":{"stringValue":"x"}}',
        "metadata_key": b'{"attributes":[{"key":'
        + value
        + b',"value":{"intValue":"1"}}],"body":{"stringValue":"x"}}',
        "whole": value,
        "extra": b'{"body":' + value + b"}",
    }
    return slot.get(item.where, b'{"body":{"stringValue":' + value + b"}}")


def _otlp_json(items, marks, valid):
    now = _now_ns()
    records = [_otlp_record(i, m, now) for i, m in zip(items, marks, strict=True)]
    parts = [r if isinstance(r, bytes) else orjson.dumps(r) for r in records]
    body = b'{"resourceLogs":[{"resource":{"attributes":[]},"scopeLogs":[{"logRecords":['
    body += b",".join(parts) + b"]}]}]}"
    return Built(
        "otlp-json", "/v1/logs", "application/json", body, valid, len(items), _otlp_typed(items)
    )


OTLP_STRING_SLOTS = {"message", "level", "metadata_value", "metadata_key"}


def _otlp_typed(items) -> bool:
    """OTLP JSON is protobuf's JSON mapping: a value of the wrong type in any record makes
    the whole request unreadable (a 400, as the Collector answers), not one record."""
    return _decodable(items) and all(
        item is None
        or (item.where in OTLP_STRING_SLOTS and json_value(item.value).startswith(b'"'))
        for item in items
    )


def _otlp_proto(items, marks, valid):
    request = logs_service_pb2.ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    swaps = []
    for item, m in zip(items, marks, strict=True):
        record = scope.log_records.add()
        record.time_unix_nano = _now_ns()
        if m:
            record.body.string_value = m[1]
            record.severity_text = "INFO"
            continue
        text, raw = _pb_text(item.value)
        if raw:
            swaps.append((text.encode(), raw))
        if item.where == "timestamp":
            record.time_unix_nano = (2**64 - 1) if len(text) % 2 else 1
            record.body.string_value = "x"
        elif item.where == "level":
            record.severity_text = text
            record.severity_number = 2**31 - 1
        elif item.where == "metadata_value":
            attr = record.attributes.add(key="k")
            attr.value.string_value = text
        elif item.where == "metadata_key":
            attr = record.attributes.add(key=text)
            attr.value.int_value = -(2**63)
        else:
            record.body.string_value = text
    body = request.SerializeToString()
    for placeholder, raw in swaps:
        body = body.replace(placeholder, raw, 1)
    # A string that is not UTF-8 makes its whole ResourceLogs unparseable to protobuf (the
    # OTLP spec's 400), so the records beside it are not expected to be taken.
    return Built(
        "otlp-proto", "/v1/logs", "application/x-protobuf", body, valid, len(items), not swaps
    )


def _bulk(items, marks, valid):
    lines = []
    for index, part in enumerate(_json_parts(items, marks)):
        action = b'{"create":{}}' if index % 2 else b'{"index":{"_index":"hostile"}}'
        lines += [action, part]
    return Built(
        "bulk", "/_bulk", "application/x-ndjson", b"\n".join(lines) + b"\n", valid, len(items)
    )


BUILDERS = {
    "fast-json": _data_json("/data/fast"),
    "fast-ndjson": _data_ndjson("/data/fast"),
    "fast-text": _data_text("/data/fast"),
    "sync-json": _data_json("/data/"),
    "sync-ndjson": _data_ndjson("/data/"),
    "sync-text": _data_text("/data/"),
    "heroku": _logplex,
    "loki-json": _loki_json,
    "loki-proto": _loki_proto,
    "bulk": _bulk,
    "otlp-json": _otlp_json,
    "otlp-proto": _otlp_proto,
}
FACES = tuple(BUILDERS)
# Values that only make sense per face kind.
JSON_FACES = {"fast-json", "fast-ndjson", "sync-json", "sync-ndjson", "bulk", "loki-json"}
JSON_FACES |= {"otlp-json"}


def values_for(face: str) -> tuple[str, ...]:
    return tuple(JSON_VALUES if face in JSON_FACES else RAW_LINES)


def compress(body: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(body, compresslevel=1)
    if how == "deflate":
        return zlib.compress(body, 1)
    return body


@cache
def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzipped (about 64 KB): past MAX_CONTENT_LENGTH once inflated."""
    return gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
