"""With keys configured, each shipper's real client sends its ingest key its own way."""

from __future__ import annotations

import logging

import logging_loki
import pytest
import requests
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from app import create_app

INGEST, READ = "ingest-key-" + "i" * 16, "read-key-" + "r" * 16


@pytest.fixture
def app(settings):
    return create_app(settings.with_overrides(ingest_keys=INGEST, read_keys=READ))


def _loki(live_server, auth) -> None:
    handler = logging_loki.LokiHandler(
        url=f"http://{live_server}/loki/api/v1/push", tags={"app": "a"}, version="1", auth=auth
    )
    logger = logging.getLogger("sluice.test.keys.loki")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("via loki")
    finally:
        logger.removeHandler(handler)


def test_loki_client_with_basic_auth(live_server, rows, r, settings):
    _loki(live_server, ("tenant", READ))  # a read key may not push: refused, not queued
    assert r.xlen(settings.stream_name) == 0
    _loki(live_server, ("tenant", INGEST))
    assert [row["message"] for row in rows()] == ["via loki"]


def _otlp(live_server, headers) -> None:
    provider = LoggerProvider()
    exporter = OTLPLogExporter(endpoint=f"http://{live_server}/v1/logs", headers=headers)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("sluice.test.keys.otlp")
    logger.propagate = False
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger.addHandler(handler)
    try:
        logger.error("via otlp")
    finally:
        logger.removeHandler(handler)
        provider.shutdown()


def test_otlp_exporter_with_a_bearer_header(live_server, rows, r, settings):
    _otlp(live_server, {})
    assert r.xlen(settings.stream_name) == 0
    _otlp(live_server, {"Authorization": f"Bearer {INGEST}"})
    assert [row["message"] for row in rows()] == ["via otlp"]


def test_loki_probes_stay_open(live_server):
    for path in ("/ready", "/loki/api/v1/status/buildinfo"):
        assert requests.get(f"http://{live_server}{path}", timeout=10).status_code == 200
