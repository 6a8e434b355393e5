"""OTLP/HTTP logs with the OpenTelemetry SDK's exporter (protobuf) and a JSON body."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

RESOURCE = {"service.name": "checkout", "host.name": "web-2", "deployment.environment": "prod"}


# The SDK's own LoggingHandler still exports through OTLPLogExporter, which is under test.
@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
def test_sdk_exporter_protobuf_gzip(live_server, rows):
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    exporter = OTLPLogExporter(
        endpoint=f"http://{live_server}/v1/logs", compression=Compression.Gzip
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("sluice.test.otlp")
    logger.propagate = False
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("test")
    before = datetime.now(UTC)
    try:
        with tracer.start_as_current_span("pay") as span:
            logger.error("payment failed", extra={"order_id": 1234, "retry": True})
            ids = span.get_span_context()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    (row,) = rows()
    assert before <= row["timestamp"] <= datetime.now(UTC)
    assert (row["level"], row["source"], row["application"]) == ("ERROR", "web-2", "checkout")
    assert row["message"] == "payment failed"
    meta = row["metadata"]
    assert meta["trace_id"] == f"{ids.trace_id:032x}"
    assert meta["span_id"] == f"{ids.span_id:016x}"
    assert {k: meta["resource"][k] for k in RESOURCE} == RESOURCE
    assert meta["resource"]["telemetry.sdk.language"] == "python"
    assert meta["attributes"]["order_id"] == 1234
    assert meta["attributes"]["retry"] is True
    assert (meta["severity_number"], meta["severity_text"]) == (17, "ERROR")
    assert meta["format"] == "otlp"
    assert meta["scope"]["name"] == logger.name


JSON_BODY = {
    "resourceLogs": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
            "scopeLogs": [
                {
                    "scope": {"name": "lib", "version": "1.2"},
                    "logRecords": [
                        {
                            "timeUnixNano": "1764324000500000000",
                            "severityNumber": 13,
                            "severityText": "WARN",
                            "body": {"stringValue": "slow query"},
                            "attributes": [{"key": "ms", "value": {"intValue": "1500"}}],
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                        },
                        {"severityText": "info", "body": {"stringValue": "   "}},
                        {
                            "observedTimeUnixNano": "1764324001000000000",
                            "body": {
                                "kvlistValue": {
                                    "values": [{"key": "event", "value": {"stringValue": "login"}}]
                                }
                            },
                        },
                    ],
                }
            ],
        }
    ]
}


def test_json_body_with_partial_success(client, rows):
    response = client.post("/v1/logs", json=JSON_BODY)
    assert response.status_code == 200
    assert response.get_json()["partialSuccess"]["rejectedLogRecords"] == "1"
    first, second = rows()
    assert first["timestamp"] == datetime(2025, 11, 28, 10, 0, 0, 500000, tzinfo=UTC)
    assert (first["level"], first["source"], first["application"]) == ("WARN", None, "api")
    assert first["message"] == "slow query"
    assert first["metadata"] == {
        "attributes": {"ms": 1500},
        "resource": {"service.name": "api"},
        "scope": {"name": "lib", "version": "1.2"},
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b174",
        "severity_number": 13,
        "severity_text": "WARN",
        "format": "otlp",
    }
    assert second["timestamp"] == datetime(2025, 11, 28, 10, 0, 1, tzinfo=UTC)
    assert (second["level"], second["message"]) == ("INFO", '{"event":"login"}')


def _request(*messages: str) -> bytes:
    request = logs_service_pb2.ExportLogsServiceRequest()
    for message in messages:
        record = request.resource_logs.add().scope_logs.add().log_records.add()
        record.body.string_value = message
    return request.SerializeToString()


def test_truncated_protobuf_is_400_status_and_keeps_what_came_before(live_server, rows):
    body = _request("first resource", "second, cut short")
    response = requests.post(
        f"http://{live_server}/v1/logs",
        data=body[:-4],
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert b"truncated" in response.content
    assert [r["message"] for r in rows()] == ["first resource"]


def test_queue_full_is_429_and_the_exporter_retry_stores_once(app, live_server, settings, rows):
    app.extensions["sluice"] = settings.with_overrides(stream_maxlen=0)
    refused = requests.post(
        f"http://{live_server}/v1/logs",
        data=_request("retried"),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "5")
    app.extensions["sluice"] = settings
    again = requests.post(
        f"http://{live_server}/v1/logs",
        data=_request("retried"),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert again.status_code == 200
    assert [r["message"] for r in rows()] == ["retried"]
