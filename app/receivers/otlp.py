"""OTLP/HTTP logs (`POST /v1/logs`): protobuf or JSON export requests as intake items.

Decoded with the generated classes of `opentelemetry-proto`. The request is split into
its `resource_logs` by hand first (`protowire.split`), so a body cut short still yields
every complete resource before the cut. OTLP/JSON writes trace and span ids as hex,
not protobuf-JSON's base64; they are converted before parsing.
https://opentelemetry.io/docs/specs/otlp/#otlphttp
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from app.pipeline.intake import Invalid
from app.receivers import protowire
from parsers.fields import normalize_level

# SeverityNumber ranges (logs data model): 1-4 TRACE ... 21-24 FATAL.
_SEVERITY = ((4, "TRACE"), (8, "DEBUG"), (12, "INFO"), (16, "WARN"), (20, "ERROR"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RequestError(ValueError):
    """The body is not an export request at all (400 with a google.rpc.Status)."""


def level(number: int, text: str) -> str:
    """A Sluice level from SeverityNumber, else SeverityText, else INFO."""
    if number > 0:
        return next((name for top, name in _SEVERITY if number <= top), "CRITICAL")
    return normalize_level(text) or "INFO"


def any_value(value) -> object:
    """An AnyValue as plain Python (kvlists as dicts, bytes as base64)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def attributes(pairs) -> dict:
    """Repeated KeyValue as a dict."""
    return {kv.key: any_value(kv.value) for kv in pairs}


def record_item(record, resource: dict, scope) -> dict:
    """One LogRecord as LogSchema input."""
    body = any_value(record.body)
    attrs = attributes(record.attributes)
    both = {**attrs, **resource}
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    meta = {
        "attributes": attrs,
        "resource": resource,
        "scope": {"name": scope.name, "version": scope.version} if scope.name else None,
        "trace_id": record.trace_id.hex() or None,
        "span_id": record.span_id.hex() or None,
        "severity_number": record.severity_number or None,
        "severity_text": record.severity_text or None,
        "event_name": getattr(record, "event_name", "") or None,
    }
    return {
        "timestamp": _EPOCH + timedelta(microseconds=nanos // 1000) if nanos else None,
        "level": level(record.severity_number, record.severity_text),
        "source": both.get("host.name"),
        "application": both.get("service.name"),
        "message": body if isinstance(body, str) else orjson.dumps(body).decode(),
        "metadata": {**{k: v for k, v in meta.items() if v}, "format": "otlp"},
    }


def resource_items(resource_logs) -> list[dict]:
    """Every record of one ResourceLogs."""
    resource = attributes(resource_logs.resource.attributes)
    return [
        record_item(record, resource, scope_logs.scope)
        for scope_logs in resource_logs.scope_logs
        for record in scope_logs.log_records
    ]


def decode_protobuf(body: bytes) -> tuple[list[dict | Invalid], str | None]:
    """The records of a protobuf request, and what was damaged (None if nothing)."""
    chunks, damage = protowire.split(body, 1)
    items: list[dict | Invalid] = []
    for chunk in chunks:
        try:
            items.extend(resource_items(logs_pb2.ResourceLogs.FromString(chunk)))
        except DecodeError as exc:
            damage = damage or f"undecodable resource_logs: {exc}"
    if damage and not chunks:
        raise RequestError(f"not an ExportLogsServiceRequest: {damage}")
    return items, damage


def decode_json(body: bytes) -> tuple[list[dict | Invalid], str | None]:
    """The records of an OTLP/JSON request, and what was damaged (None if nothing)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"not JSON: {exc}") from None
    found = data.get("resourceLogs", data.get("resource_logs")) if isinstance(data, dict) else None
    if not isinstance(found, list):
        raise RequestError('an export request is {"resourceLogs": [...]}')
    items, damage = [], None
    for raw in found:
        try:
            message = json_format.ParseDict(_hex_ids(raw), logs_pb2.ResourceLogs())
        except (
            json_format.ParseError,
            ValueError,
            TypeError,
            AttributeError,
            RecursionError,
        ) as exc:
            damage = damage or f"undecodable resourceLogs: {exc}"
            continue
        items.extend(resource_items(message))
    return items, damage


def _hex_ids(resource_logs):
    """A copy with traceId/spanId hex strings re-encoded as base64 for ParseDict."""
    if not isinstance(resource_logs, dict):
        return resource_logs
    for scope_logs in resource_logs.get("scopeLogs", resource_logs.get("scope_logs")) or []:
        for record in (scope_logs or {}).get("logRecords", scope_logs.get("log_records")) or []:
            for key in ("traceId", "spanId", "trace_id", "span_id"):
                if isinstance(record, dict) and record.get(key):
                    record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    return resource_logs


def response(rejected: int, message: str, as_json: bool) -> tuple[bytes, str]:
    """ExportLogsServiceResponse (with partial_success when some were rejected)."""
    reply = logs_service_pb2.ExportLogsServiceResponse()
    if rejected or message:
        reply.partial_success.rejected_log_records = rejected
        reply.partial_success.error_message = message
    if as_json:
        return orjson.dumps(json_format.MessageToDict(reply)), "application/json"
    return reply.SerializeToString(), "application/x-protobuf"


def status(code: int, message: str, as_json: bool) -> tuple[bytes, str]:
    """A google.rpc.Status body (code, message): OTLP's error answer."""
    if as_json:
        return orjson.dumps({"code": code, "message": message}), "application/json"
    raw = protowire.encode_field(1, code) + protowire.encode_field(2, message)
    return raw, "application/x-protobuf"
