"""`GET /deadletters` (newest first, with their reasons) and `POST /deadletters/replay`
(back into the queue, exactly once each): the HTTP face of `app.pipeline.deadletters`."""

from __future__ import annotations

import re

from flask import current_app, jsonify
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.pipeline import deadletters, intake
from app.pipeline.connections import engine, redis_client
from app.web.errors import APIError
from app.web.openapi import Open, errors

bp = Blueprint("deadletters", __name__, description="Dead letters: list and replay.")

_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


def stream_id(value: str) -> None:
    """A Redis stream id: `<ms>-<seq>`, each at most 2^64 - 1."""
    if not _STREAM_ID.fullmatch(value) or max(map(int, value.split("-"))) >= 2**64:
        raise ValidationError("Not a stream id (like 1700000000000-0).")


MAX_REPLAY = 10_000


class ListArgs(Schema):
    """A page of dead letters."""

    class Meta:
        unknown = RAISE

    limit = fields.Integer(
        load_default=50, validate=validate.Range(1, 500), metadata={"description": "1-500."}
    )
    before = fields.String(
        load_default=None,
        validate=stream_id,
        metadata={"description": "Only dead letters older than this id (a page's `next_before`)."},
    )


class DeadLetter(Open):
    """One dead letter."""

    id = fields.String(required=True, metadata={"description": "Its id in the dead-letter stream."})
    stream_id = fields.String(allow_none=True, required=True)
    reason = fields.String(required=True)
    deliveries = fields.Integer(allow_none=True, required=True)
    dead_at = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "line, log or empty."})
    format = fields.String(allow_none=True, required=True)
    body = fields.String(allow_none=True, required=True)
    truncated = fields.Boolean(required=True)


class DeadLetterPage(Open):
    """Newest first."""

    dead_letters = fields.List(fields.Nested(DeadLetter), required=True)
    total = fields.Integer(required=True)
    next_before = fields.String(allow_none=True, required=True)


class ReplayArgs(Schema):
    """`{"ids": [...]}` for a selection, or `{"all": true}` (oldest first, up to `limit`)."""

    class Meta:
        unknown = RAISE

    ids = fields.List(
        fields.String(validate=stream_id), validate=validate.Length(1, 1000), load_default=None
    )
    all = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, MAX_REPLAY))

    @validates_schema
    def _one_of(self, data, **kwargs):
        if (data["ids"] is None) == (not data["all"]):
            raise ValidationError('Give either `ids` or `"all": true`.', field_name="ids")


class Replayed(Open):
    """Per dead-letter id, what the replay did; `remaining` dead letters are left."""

    replayed = fields.List(fields.Dict(), required=True)
    already_replayed = fields.List(fields.String(), required=True)
    already_stored = fields.List(fields.String(), required=True)
    failed = fields.List(fields.Dict(), required=True)
    not_found = fields.List(fields.String(), required=True)
    remaining = fields.Integer(required=True)


def _redis_and_settings():
    settings = current_app.extensions["sluice"]
    return redis_client(settings.redis_url), settings


@bp.get("/deadletters")
@bp.arguments(ListArgs, location="query", unknown=RAISE, error_status_code=400)
@bp.response(200, DeadLetterPage, description="A page, newest first.")
@errors(bp, 400, 503)
def list_dead_letters(args):
    """Dead letters newest first with their reasons; page with `before=<next_before>`."""
    r, settings = _redis_and_settings()
    page, next_before = deadletters.newest(r, settings, args["limit"], args["before"])
    total = deadletters.count(r, settings)
    return jsonify({"dead_letters": page, "total": total, "next_before": next_before})


@bp.post("/deadletters/replay")
@bp.arguments(ReplayArgs, unknown=RAISE, error_status_code=400)
@bp.response(200, Replayed, description="What became of each.")
@errors(bp, 400, 429, 503)
def replay_dead_letters(args):
    """Put dead letters back into the queue (after a parser fix, say), each exactly once;
    a retry of the same replay enqueues nothing twice."""
    r, settings = _redis_and_settings()
    with engine(settings.database_url).connect() as conn:
        try:
            if args["all"]:
                done = deadletters.replay_oldest(r, settings, conn, args["limit"])
            else:
                done = deadletters.replay(r, settings, conn, args["ids"])
        except intake.QueueFull as exc:
            raise APIError(
                429,
                "queue_full",
                f"The queue is full ({exc.length} logs not yet stored); retry the replay "
                "later (what was replayed stays replayed).",
                retry_after=5,
            ) from None
    return jsonify({**done.as_json(), "remaining": deadletters.count(r, settings)})
