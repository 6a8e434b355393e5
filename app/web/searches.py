"""Saved searches: `GET/POST /searches`, `GET/PUT/DELETE /searches/<id>`.

A saved search is a name and a filter set, the one `GET /logs` takes (without the time
range): `{"name": "billing errors", "filters": {"min_level": "ERROR", "application":
"billing"}}`, or the filters as a query string (`"filters": "min_level=ERROR&q=card"`).
The rule that checks and applies it is `app.pipeline.filters`; `app.pipeline.searches`
stores it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import delete, insert, select, update

from app.pipeline import searches as saved
from app.pipeline.alerts import alerts
from app.pipeline.connections import engine
from app.web.errors import APIError
from app.web.openapi import Error, Open, errors
from app.web.ui import render_page


def Moment(**kwargs) -> fields.String:
    """A moment as the API writes it: ISO 8601 in UTC."""
    return fields.String(metadata={"format": "date-time"}, **kwargs)


bp = Blueprint("searches", __name__, description="Saved searches (filter sets of GET /logs).")

MAX_ID = 2**63 - 1
# The web UI's pages (`/ui/searches` here, `/ui/alerts` in alerts.py) are routes of their
# API's blueprint, so they need the scope that reading that API needs.
UI_PAGE = {
    "responses": {"200": {"description": "The page.", "content": {"text/html": {"schema": {}}}}}
}
BODY = {"location": "json", "error_status_code": 400}


def no_nul(value: str) -> None:
    """Refuse text PostgreSQL cannot store."""
    if "\x00" in value:
        raise ValidationError("Contains a NUL byte.")


class FilterSet(fields.Field):
    """A filter set: an object of GET /logs parameters, or their query string."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict:
        return saved.checked(value)


class SearchIn(Schema):
    """A saved search as given."""

    name = fields.String(
        required=True, validate=[validate.Length(min=1, max=saved.MAX_NAME), no_nul]
    )
    filters = FilterSet(
        load_default=dict,
        metadata={
            "description": "GET /logs parameters but since/until: an object "
            '({"min_level": "WARN", "meta.user_id": "789"}) or a query string.',
            "oneOf": [{"type": "object"}, {"type": "string"}],
        },
    )

    @validates("name")
    def _named(self, value, **kwargs):
        if not value.strip():
            raise ValidationError("Must not be blank.")


class SearchChange(SearchIn):
    """The fields of a search to change (any of them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


class SearchOut(Open):
    """A saved search; `query` is its filter set as a GET /logs query string, `link`
    where the web UI opens it."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    filters = fields.Dict(required=True)
    query = fields.String(required=True)
    link = fields.String(required=True)
    created_at = Moment(required=True)
    updated_at = Moment(required=True)


class SearchList(Open):
    searches = fields.List(fields.Nested(SearchOut), required=True)


def _engine():
    return engine(current_app.extensions["sluice"].database_url)


def find(conn, search_id: int):
    """The saved search with this id, or a 404."""
    row = None
    if search_id <= MAX_ID:
        row = (
            conn.execute(select(saved.searches).where(saved.searches.c.id == search_id))
            .mappings()
            .first()
        )
    if row is None:
        raise APIError(404, "not_found", f"No saved search with id {search_id}.")
    return row


@bp.get("/searches")
@bp.response(200, SearchList, description="Every saved search, by name.")
@errors(bp, 503)
def list_searches():
    """Every saved search, ordered by name."""
    with _engine().connect() as conn:
        rows = conn.execute(
            select(saved.searches).order_by(saved.searches.c.name, saved.searches.c.id)
        ).mappings()
        return {"searches": [saved.to_json(r) for r in rows]}


@bp.post("/searches")
@bp.arguments(SearchIn, **BODY)
@bp.response(201, SearchOut, description="Saved.")
@errors(bp, 400, 503)
def create_search(body):
    """Save a search."""
    with _engine().begin() as conn:
        row = (
            conn.execute(insert(saved.searches).values(**body).returning(saved.searches))
            .mappings()
            .one()
        )
        return saved.to_json(row)


@bp.get("/searches/<int:search_id>")
@bp.response(200, SearchOut, description="The saved search.")
@errors(bp, 404, 503)
def get_search(search_id: int):
    """One saved search."""
    with _engine().connect() as conn:
        return saved.to_json(find(conn, search_id))


@bp.put("/searches/<int:search_id>")
@bp.arguments(SearchChange, **BODY)
@bp.response(200, SearchOut, description="Updated.")
@errors(bp, 400, 404, 503)
def update_search(body, search_id: int):
    """Change a saved search's name or filters (the fields given are replaced); alerts
    on it use the new filters from their next evaluation."""
    with _engine().begin() as conn:
        find(conn, search_id)
        row = (
            conn.execute(
                update(saved.searches)
                .where(saved.searches.c.id == search_id)
                .values(**body, updated_at=datetime.now(UTC))
                .returning(saved.searches)
            )
            .mappings()
            .one()
        )
        return saved.to_json(row)


@bp.delete("/searches/<int:search_id>")
@bp.response(204, description="Deleted.")
@bp.alt_response(409, schema=Error, description="Alerts use this search; delete them first.")
@errors(bp, 404, 503)
def delete_search(search_id: int):
    """Delete a saved search no alert uses (409 naming the alerts otherwise)."""
    with _engine().begin() as conn:
        find(conn, search_id)
        users = (
            conn.execute(
                select(alerts.c.id).where(alerts.c.search_id == search_id).order_by(alerts.c.id)
            )
            .scalars()
            .all()
        )
        if users:
            raise APIError(
                409,
                "conflict",
                f"Alerts {', '.join(map(str, users))} use this search; delete or change them "
                "first.",
                alerts=list(users),
            )
        conn.execute(delete(saved.searches).where(saved.searches.c.id == search_id))
    return "", 204


@bp.get("/ui/searches")
@bp.doc(**UI_PAGE)
def searches_page():
    """The web UI's saved searches: open one in the search view, delete one, save one."""
    return render_page("searches.html")
