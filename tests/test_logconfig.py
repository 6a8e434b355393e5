"""Sluice's own log lines: text or one JSON object per line, Celery's per-task lines quiet."""

from __future__ import annotations

import logging

import orjson

from app.pipeline import logconfig
from config import Settings


def _record(msg="stored %s logs", args=(3,), exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("tasks.drain", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_json_lines_are_objects_with_the_formatted_message():
    line = logconfig.JsonFormatter().format(_record())
    out = orjson.loads(line)
    assert out["message"] == "stored 3 logs"
    assert (out["level"], out["logger"]) == ("WARNING", "tasks.drain")
    assert out["time"].endswith("+00:00")


def test_json_lines_carry_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = logconfig.JsonFormatter().format(_record(exc_info=sys.exc_info()))
    assert "ValueError: boom" in orjson.loads(line)["exc"]


def test_setup_adds_one_handler_and_quiets_celery_task_lines():
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        logconfig.setup(Settings(log_format="json", log_level="INFO"))
        logconfig.setup(Settings(log_format="json", log_level="INFO"))
        ours = [h for h in root.handlers if getattr(h, "sluice", False)]
        assert len(ours) == 1
        assert isinstance(ours[0].formatter, logconfig.JsonFormatter)
        assert not logging.getLogger("celery.app.trace").isEnabledFor(logging.INFO)
        assert logging.getLogger("tasks.drain").isEnabledFor(logging.INFO)
    finally:
        for h in root.handlers:
            if h not in before:
                root.removeHandler(h)
        root.setLevel(level)
