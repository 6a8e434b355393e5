"""What every receiver's HTTP face shares: its settings, Redis, and the decoded body.

The faces answer in their protocols' own shapes, so errors here are raised as
`WireError` for the face to word, never as the JSON API's error shape.
"""

from __future__ import annotations

from flask import current_app, request
from werkzeug.exceptions import HTTPException

from app.pipeline.connections import redis_client
from app.receivers import bodies


class WireError(Exception):
    """A request the face refuses as a whole: HTTP status and the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def settings():
    """This app's Settings."""
    return current_app.extensions["sluice"]


def redis():
    """The process's Redis client for this app's settings."""
    return redis_client(settings().redis_url)


def body(extra_encoding: str | None = None) -> bytes:
    """The request body with Content-Encoding (then `extra_encoding`) undone, bounded by
    MAX_CONTENT_LENGTH uncompressed; WireError 400/413 when it cannot be."""
    limit = settings().max_content_length
    try:
        data = request.get_data(cache=False)
    except HTTPException:
        raise  # werkzeug's own answers (413 over MAX_CONTENT_LENGTH, client gone)
    except Exception as exc:  # the server could not read the body: the
        # client's fault (gunicorn raises its ParseException, e.g. a bad chunk size)
        raise WireError(400, f"The body could not be read: {exc}") from None
    try:
        data = bodies.decode(data, request.headers.get("Content-Encoding"), limit)
        if extra_encoding:
            data = bodies.decode(data, extra_encoding, limit)
    except bodies.BodyError as exc:
        raise WireError(413 if exc.too_large else 400, str(exc)) from None
    return data


def check_count(count: int) -> None:
    """WireError 413 when a request holds more logs than MAX_BATCH."""
    limit = settings().max_batch
    if count > limit:
        raise WireError(413, f"{count} logs in one request; the limit is {limit} (MAX_BATCH)")
