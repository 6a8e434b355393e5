"""`POST /parse/auto` and `GET /parse/formats`: try the parsers without storing anything."""

from __future__ import annotations

from flask import jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.pipeline.record import known_format
from app.web.errors import APIError
from app.web.openapi import FORMAT_PARAMETER, Formats, Parsed, errors
from parsers import detect_format, get_factory, parse_line

bp = Blueprint("parse", __name__, url_prefix="/parse", description="Try the parsers.")

MAX_LINES = 1000


class ParseRequest(Schema):
    """`{"raw_log": "..."}`, optionally with `"format"` to skip detection."""

    raw_log = fields.String(required=True, validate=validate.Length(min=1, max=1_000_000))
    format = fields.String(load_default=None)


def _as_json(fmt: str, parsed) -> dict:
    return {
        "format": fmt,
        "log": {
            "timestamp": parsed.timestamp.isoformat() if parsed.timestamp else None,
            "level": parsed.level or "INFO",
            "source": parsed.source,
            "application": parsed.application,
            "message": parsed.message,
            "metadata": parsed.metadata,
        },
    }


@bp.post("/auto")
@bp.doc(
    parameters=[FORMAT_PARAMETER],
    requestBody={
        "required": True,
        "content": {
            "application/json": {"schema": "ParseRequest"},
            "text/plain": {"schema": {"type": "string"}},
        },
    },
)
@bp.response(200, Parsed, description="One result per line.")
@errors(bp, 400, 413, 422)
def parse_auto():
    """Detect and parse each line; 422 (with the reason per line) when none is recognised."""
    if request.mimetype == "text/plain":
        text, fmt = request.get_data(as_text=True), request.args.get("format")
    else:
        body = ParseRequest().load(request.get_json(silent=True) or {})
        text, fmt = body["raw_log"], body["format"]
    known_format(fmt)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise APIError(400, "validation_error", "No line to parse.", fields={"raw_log": ["Empty."]})
    if len(lines) > MAX_LINES:
        raise APIError(413, "too_many_lines", f"At most {MAX_LINES} lines per request.")
    results = []
    for number, line in enumerate(lines):
        detected = fmt or detect_format(line)
        if detected is None:
            results.append(
                {"line": number, "format": None, "error": "No known format matches this line."}
            )
            continue
        name, parsed = parse_line(line, detected)
        results.append({"line": number, **_as_json(name, parsed)})
    if all(r["format"] is None for r in results):
        raise APIError(
            422, "unrecognised_format", "No line matched a known format.", results=results
        )
    return jsonify(results=results, parsed=sum(r["format"] is not None for r in results))


@bp.get("/formats")
@bp.response(200, Formats, description="The formats Sluice detects.")
def formats():
    """Every format Sluice detects, with an example line."""
    return jsonify(formats=get_factory().formats())
