"""Alerts: `POST /alerts`, `GET /alerts`, `GET/PUT/DELETE /alerts/<id>` and
`GET /alerts/<id>/events` (its history: firing, resolved, reminders, delivery attempts).

    {"name": "payment errors", "search": 3, "threshold": 5, "window": "5m",
     "webhook": "https://hooks.slack.com/services/...", "repeat": "1h",
     "snooze_until": null}

`search` is a saved search's id or an inline filter set (as `/searches` takes).
Evaluation is `tasks/alerts.py`, the rule `app.pipeline.alerts`, the notification
`app.pipeline.webhooks`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import current_app, g
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.pipeline import alerts as rule
from app.pipeline import searches as saved
from app.pipeline import webhooks
from app.pipeline.alerts import alert_events, alerts
from app.pipeline.connections import engine
from app.web.errors import APIError
from app.web.openapi import Open, errors
from app.web.searches import MAX_ID, UI_PAGE, Moment, find, no_nul
from app.web.ui import render_page

bp = Blueprint("alerts", __name__, description="Alerts on saved searches, with webhooks.")

BODY = {"location": "json", "error_status_code": 400}
QUERY = {"location": "query", "error_status_code": 400}
MAX_THRESHOLD = 10_000_000


class Span(fields.Field):
    """A span: `30s`, `5m`, `1h`, `1d` (at most 7 days), as seconds."""

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        try:
            return rule.parse_span(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class SearchRef(fields.Field):
    """A saved search's id, or an inline filter set (object or query string)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Give a saved search's id or a filter set.")
        if isinstance(value, int):
            if not 1 <= value <= MAX_ID:
                raise ValidationError("No such saved search.")
            return value
        return saved.checked(value)


class Webhook(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs) -> str:
        settings = current_app.extensions["sluice"]
        problem = webhooks.url_problem(value, webhooks.allowed_hosts(settings.alert_webhook_hosts))
        if problem:
            raise ValidationError(problem)
        return value


class AlertIn(Schema):
    """An alert as given."""

    name = fields.String(
        required=True, validate=[validate.Length(min=1, max=saved.MAX_NAME), no_nul]
    )
    search = SearchRef(
        required=True,
        metadata={
            "description": "A saved search's id, or an inline filter set (GET /logs "
            "parameters but since/until, as an object or a query string).",
            "oneOf": [{"type": "integer"}, {"type": "object"}, {"type": "string"}],
        },
    )
    threshold = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_THRESHOLD),
        metadata={"description": "Fires when this many logs match in the window (1: any)."},
    )
    window = Span(required=True, metadata={"type": "string", "example": "5m"})
    webhook = Webhook(required=True, metadata={"type": "string", "format": "uri"})
    repeat = Span(
        allow_none=True,
        load_default=None,
        metadata={"type": "string", "description": "A reminder this often while firing."},
    )
    snooze_until = fields.AwareDateTime(
        allow_none=True,
        load_default=None,
        default_timezone=UTC,
        metadata={"description": "No notification before this moment."},
    )
    enabled = fields.Boolean(load_default=True)

    @validates("name")
    def _named(self, value, **kwargs):
        if not value.strip():
            raise ValidationError("Must not be blank.")

    @validates_schema
    def _sane(self, data, **kwargs):
        snooze = data.get("snooze_until")
        if snooze is not None and not datetime(1970, 1, 2, tzinfo=UTC) < snooze < datetime(
            9999, 1, 1, tzinfo=UTC
        ):
            raise ValidationError("Out of the range of dates.", field_name="snooze_until")


class AlertChange(AlertIn):
    """The fields of a alert to change (any of them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


class AlertOut(Open):
    """An alert and its state (`ok` or `firing`)."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    search = fields.Integer(allow_none=True, required=True)
    filters = fields.Dict(required=True)
    threshold = fields.Integer(required=True)
    window = fields.String(required=True)
    webhook = fields.String(required=True)
    repeat = fields.String(allow_none=True, required=True)
    snooze_until = Moment(allow_none=True, required=True)
    enabled = fields.Boolean(required=True)
    state = fields.String(required=True, validate=validate.OneOf((rule.OK, rule.FIRING)))
    state_since = Moment(required=True)
    last_count = fields.Integer(allow_none=True, required=True)
    last_evaluated_at = Moment(allow_none=True, required=True)
    last_notified_at = Moment(allow_none=True, required=True)
    next_eval_at = Moment(required=True)
    link = fields.String(required=True)


class AlertList(Open):
    alerts = fields.List(fields.Nested(AlertOut), required=True)


class EventOut(Open):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    at = Moment(required=True)
    count = fields.Integer(allow_none=True, required=True)
    notification_id = fields.Integer(allow_none=True, required=True)
    detail = fields.Dict(required=True)


class EventPage(Open):
    events = fields.List(fields.Nested(EventOut), required=True)
    next_before = fields.Integer(allow_none=True, required=True)


class EventsQuery(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    before = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "`next_before` of the previous page."},
    )


def _engine():
    return engine(current_app.extensions["sluice"].database_url)


def _iso(value):
    return value.isoformat() if value is not None else None


def shown_webhook(url: str) -> str:
    """The webhook as this caller may see it: a Slack URL's path is its secret, so a key
    that may only read sees the scheme and host (admin keys, and open mode, see it all)."""
    key = g.get("sluice_key")
    if key is None or key.allows("admin"):
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def to_json(conn, row) -> dict:
    """An alert as the API returns it."""
    filter_set = rule.filter_set_of(conn, row)
    return {
        "id": row["id"],
        "name": row["name"],
        "search": row["search_id"],
        "filters": filter_set,
        "threshold": row["threshold"],
        "window": rule.format_span(row["window_seconds"]),
        "webhook": shown_webhook(row["webhook"]),
        "repeat": rule.format_span(row["repeat_seconds"]) if row["repeat_seconds"] else None,
        "snooze_until": _iso(row["snooze_until"]),
        "enabled": row["enabled"],
        "state": row["state"],
        "state_since": _iso(row["state_since"]),
        "last_count": row["last_count"],
        "last_evaluated_at": _iso(row["last_evaluated_at"]),
        "last_notified_at": _iso(row["last_notified_at"]),
        "next_eval_at": _iso(row["next_eval_at"]),
        "link": saved.ui_link("", filter_set),
    }


def _columns(conn, body: dict) -> dict:
    """The request's fields as the alerts table's columns."""
    out = {}
    names = {"window": "window_seconds", "repeat": "repeat_seconds"}
    for key, value in body.items():
        if key == "search":
            if isinstance(value, int):
                try:
                    find(conn, value)
                except APIError:
                    raise ValidationError({"search": [f"No saved search {value}."]}) from None
                out.update(search_id=value, filters=None)
            else:
                out.update(search_id=None, filters=value)
        else:
            out[names.get(key, key)] = value
    return out


def find_alert(conn, alert_id: int, lock: bool = False):
    """The alert with this id, or a 404."""
    row = None
    if alert_id <= MAX_ID:
        statement = select(alerts).where(alerts.c.id == alert_id)
        row = conn.execute(statement.with_for_update() if lock else statement).mappings().first()
    if row is None:
        raise APIError(404, "not_found", f"No alert with id {alert_id}.")
    return row


def _write(statement):
    """Run an insert/update of an alert; a saved search deleted meanwhile is a 400."""
    with _engine().begin() as conn:
        try:
            row = conn.execute(statement(conn)).mappings().one()
        except IntegrityError:
            raise ValidationError({"search": ["That saved search no longer exists."]}) from None
        return to_json(conn, row)


@bp.get("/alerts")
@bp.response(200, AlertList, description="Every alert, by name.")
@errors(bp, 503)
def list_alerts():
    """Every alert and its state."""
    with _engine().connect() as conn:
        rows = conn.execute(select(alerts).order_by(alerts.c.name, alerts.c.id)).mappings().all()
        return {"alerts": [to_json(conn, r) for r in rows]}


@bp.post("/alerts")
@bp.arguments(AlertIn, **BODY)
@bp.response(201, AlertOut, description="Created; first evaluated within a beat tick.")
@errors(bp, 400, 503)
def create_alert(body):
    """Create an alert on a saved search or an inline filter set."""
    return _write(lambda conn: insert(alerts).values(**_columns(conn, body)).returning(alerts))


@bp.get("/alerts/<int:alert_id>")
@bp.response(200, AlertOut, description="The alert.")
@errors(bp, 404, 503)
def get_alert(alert_id: int):
    """One alert and its state."""
    with _engine().connect() as conn:
        return to_json(conn, find_alert(conn, alert_id))


@bp.put("/alerts/<int:alert_id>")
@bp.arguments(AlertChange, **BODY)
@bp.response(200, AlertOut, description="Updated; evaluated again at the next tick.")
@errors(bp, 400, 404, 503)
def update_alert(body, alert_id: int):
    """Change an alert (the fields given are replaced). Its state is kept; it is
    evaluated again at the next beat tick with the new settings."""

    def statement(conn):
        find_alert(conn, alert_id, lock=True)  # waits for an evaluation under way
        now = datetime.now(UTC)
        return (
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(**_columns(conn, body), updated_at=now, next_eval_at=now)
            .returning(alerts)
        )

    return _write(statement)


@bp.delete("/alerts/<int:alert_id>")
@bp.response(204, description="Deleted, with its history.")
@errors(bp, 404, 503)
def delete_alert(alert_id: int):
    """Delete an alert and its history (pending deliveries are dropped)."""
    with _engine().begin() as conn:
        find_alert(conn, alert_id, lock=True)
        conn.execute(delete(alerts).where(alerts.c.id == alert_id))
    return "", 204


@bp.get("/alerts/<int:alert_id>/events")
@bp.arguments(EventsQuery, **QUERY)
@bp.response(200, EventPage, description="Newest first.")
@errors(bp, 400, 404, 503)
def alert_events_list(args, alert_id: int):
    """The alert's history, newest first: firing, reminder and resolved notifications
    (with the payload sent), and each delivery attempt with the receiver's answer."""
    limit = args["limit"]
    with _engine().connect() as conn:
        find_alert(conn, alert_id)
        statement = select(alert_events).where(alert_events.c.alert_id == alert_id)
        if args.get("before"):
            statement = statement.where(alert_events.c.id < args["before"])
        rows = (
            conn.execute(statement.order_by(alert_events.c.id.desc()).limit(limit + 1))
            .mappings()
            .all()
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "events": [
            {
                "id": r["id"],
                "kind": r["kind"],
                "at": r["at"].isoformat(),
                "count": r["count"],
                "notification_id": r["notification_id"],
                "detail": r["detail"],
            }
            for r in rows
        ],
        "next_before": rows[-1]["id"] if more else None,
    }


@bp.get("/ui/alerts")
@bp.doc(**UI_PAGE)
def alerts_page():
    """The web UI's alerts: create one, see each one's state and history."""
    return render_page("alerts.html")
