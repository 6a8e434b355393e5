"""One JSON error shape for every error, registered in one place.

    {"error": "validation_error", "message": "...", "status": 422, "fields": {...}}

`fields` (field name -> list of problems) appears when input was invalid; other keys
(`rejected` for batches, `retry_after`) appear where they apply. 5xx are logged with the
traceback, 4xx at warning (Flask's errorhandling docs; microblog's api/errors.py).
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error the API answers with: status, a machine code, a message, extra fields."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None, **extra
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.extra = extra


def error_response(status: int, code: str, message: str, retry_after: int | None = None, **extra):
    """Build the JSON error response (also used outside handlers, e.g. by /health)."""
    body = {"error": code, "message": message, "status": status, **extra}
    response = jsonify(body)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers for APIError, ValidationError, HTTPException and the rest."""
    register_dependency_handlers(app)

    @app.errorhandler(APIError)
    def _api_error(exc: APIError):
        _log(exc.status, exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.retry_after, **exc.extra)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        fields = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        _log(400, f"invalid input: {fields}")
        return error_response(
            400, "validation_error", "The request has invalid fields.", fields=fields
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        messages = getattr(exc, "data", {}).get("messages")
        if messages:  # flask-smorest's arguments (webargs): {location: {field: problems}}
            return _validation_error(ValidationError(_by_field(messages)))
        _log(exc.code or 500, exc.description or "")
        response = error_response(exc.code or 500, _code_for(exc), exc.description or "")
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side.")


def _by_field(messages: dict) -> dict:
    out = {}
    for problems in messages.values():
        out.update(problems if isinstance(problems, dict) else {"_schema": problems})
    return out


def _log(status: int, message: str) -> None:
    if status >= 500:
        log.error("%s %s -> %s: %s", request.method, request.path, status, message)
    else:
        log.warning("%s %s -> %s: %s", request.method, request.path, status, message)


def register_dependency_handlers(app: Flask) -> None:
    """A dependency that is down or full is a 503 with Retry-After, never a 500 (Redis
    out of memory or past REDIS_MEMORY_HIGH too); a full queue no receiver words is a
    429 with the Retry-After the drain rate gives."""
    import redis
    from sqlalchemy.exc import InterfaceError, OperationalError

    def unavailable(code: str, what: str):
        def handler(exc):
            log.error("%s on %s %s: %s", code, request.method, request.path, exc)
            return error_response(503, code, f"{what} is unreachable; retry shortly.", 5)

        return handler

    from app.pipeline import stream

    def redis_out_of_memory(exc):
        # Redis refused a write past its maxmemory: the queue has no room, for now.
        log.error("redis_out_of_memory on %s %s: %s", request.method, request.path, exc)
        message = "The queue (Redis) is out of memory; retry once the backlog drains."
        return error_response(503, "redis_out_of_memory", message, 30)

    def redis_memory_high(exc: stream.RedisMemoryHigh):
        log.warning("redis_memory_high on %s %s: %s", request.method, request.path, exc)
        message = (
            f"The queue (Redis) uses {exc.used} of its {exc.maxmemory} bytes (past "
            "REDIS_MEMORY_HIGH); retry after the Retry-After seconds."
        )
        return error_response(503, "redis_memory_high", message, exc.retry_after)

    def queue_full(exc: stream.QueueFull):
        _log(429, str(exc))
        message = f"The queue holds {exc.length} logs not yet stored; retry shortly."
        return error_response(429, "queue_full", message, exc.retry_after)

    def redis_refused(exc: redis.ResponseError):
        # A write inside a script past maxmemory arrives as a script error, not as OOM.
        if stream.out_of_memory(exc) is not None:
            return redis_out_of_memory(exc)
        log.error("unhandled Redis error on %s %s", request.method, request.path, exc_info=exc)
        return error_response(500, "internal_error", "Something went wrong on our side.")

    app.register_error_handler(redis.exceptions.OutOfMemoryError, redis_out_of_memory)
    app.register_error_handler(redis.ResponseError, redis_refused)
    app.register_error_handler(stream.RedisMemoryHigh, redis_memory_high)
    app.register_error_handler(stream.QueueFull, queue_full)
    redis_down = unavailable("redis_unavailable", "The queue (Redis)")
    database_down = unavailable("database_unavailable", "The database")
    for exc_class, handler in (
        (redis.ConnectionError, redis_down),
        (redis.TimeoutError, redis_down),
        (OperationalError, database_down),
        (InterfaceError, database_down),
    ):
        app.register_error_handler(exc_class, handler)
