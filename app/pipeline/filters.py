"""Live-view filters: which logs a WebSocket client wants, checked in Python for the live
stream and as SQL for the catch-up from the database, so both halves agree."""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validates_schema
from sqlalchemy import ColumnElement, and_, column, literal_column

from app.pipeline.record import Level
from parsers.fields import LEVELS, levels_at_least


def _split(value):
    if value is None:
        return None
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    return list(value)


class LiveFilterSchema(Schema):
    """Filters from the query string on connect, or from a `{"type": "filter", ...}` message."""

    class Meta:
        unknown = EXCLUDE

    level = fields.List(Level(), load_default=None)
    min_level = Level(load_default=None)
    source = fields.String(load_default=None, validate=lambda s: len(s) <= 255)
    application = fields.String(load_default=None, validate=lambda s: len(s) <= 255)
    contains = fields.String(load_default=None, validate=lambda s: len(s) <= 1000)

    def load_args(self, args) -> LiveFilter:
        """Load from a query-string MultiDict (`level=ERROR&level=WARN` or `level=ERROR,WARN`)."""
        data = {
            k: args.get(k)
            for k in ("min_level", "source", "application", "contains")
            if args.get(k) not in (None, "")
        }
        levels = [v for raw in args.getlist("level") for v in _split(raw)]
        if levels:
            data["level"] = levels
        return self.load(data)

    @validates_schema
    def _one_level_rule(self, data, **kwargs):
        if data.get("level") and data.get("min_level"):
            raise ValidationError("Give level or min_level, not both.", field_name="level")

    @post_load
    def _build(self, data, **kwargs) -> LiveFilter:
        levels = data.get("level")
        if data.get("min_level"):
            levels = levels_at_least(data["min_level"])
        return LiveFilter(
            levels=frozenset(levels) if levels else None,
            source=data.get("source") or None,
            application=data.get("application") or None,
            contains=data.get("contains") or None,
        )


@dataclass(frozen=True)
class LiveFilter:
    """A client's filters; None means "any"."""

    levels: frozenset[str] | None = None
    source: str | None = None
    application: str | None = None
    contains: str | None = None

    def match(self, log: dict) -> bool:
        """Does a stored log (as published) pass these filters?"""
        if self.levels is not None and log.get("level") not in self.levels:
            return False
        if self.source is not None and log.get("source") != self.source:
            return False
        if self.application is not None and log.get("application") != self.application:
            return False
        return self.contains is None or self.contains.lower() in log.get("message", "").lower()

    def where(self) -> ColumnElement[bool]:
        """The same filters as a SQL condition on `logs`."""
        parts = []
        if self.levels is not None:
            parts.append(column("level").in_(sorted(self.levels)))
        if self.source is not None:
            parts.append(column("source") == self.source)
        if self.application is not None:
            parts.append(column("application") == self.application)
        if self.contains is not None:
            escaped = self.contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            parts.append(column("message").ilike(f"%{escaped}%", escape="\\"))
        return and_(literal_column("true"), *parts)

    def as_dict(self) -> dict:
        """The filters as JSON, echoed to the client after a change."""
        return {
            "level": sorted(self.levels, key=LEVELS.index) if self.levels else None,
            "source": self.source,
            "application": self.application,
            "contains": self.contains,
        }
