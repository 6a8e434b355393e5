"""The Flask face of Sluice: `create_app()` builds it; nothing here runs at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.pipeline import logconfig
from config import Settings, load_settings

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """Build the app from the environment, or from `settings` with `overrides` applied."""
    settings = settings or load_settings()
    if overrides:
        settings = settings.with_overrides(**overrides)
    logconfig.setup(settings)

    # Imported here, not at the top: `app.cli` (the command-line client) lives in this
    # package and should not pay for loading Flask.
    from flask import Flask

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": settings.ws_ping_interval,
        "max_message_size": settings.ws_max_message,  # past it: close 1009
    }
    app.extensions["sluice"] = settings

    from app.extensions import sock
    from app.web import auth, openapi, timing
    from app.web.errors import register_error_handlers

    openapi.configure(app, __version__)
    # One Api per app, unlike `sock`: flask-smorest keeps the app's spec in it, and tests
    # build many apps.
    api = openapi.SluiceApi(app)
    sock.init_app(app)
    openapi.register_components(api, app)
    for bp in blueprints():
        api.register_blueprint(bp)
    auth.document(api, app)
    register_error_handlers(app)  # after the Api's: Sluice's error shape wins
    auth.init_app(app)
    timing.init_app(app)

    register_custom_parsers(settings)
    return app


def blueprints() -> list:
    """Every HTTP face, in the order its routes are registered."""
    from app.web import (
        alerts,
        auth,
        bulk,
        deadletters,
        heroku,
        ingest,
        live,
        loki,
        metrics,
        otlp,
        parse,
        query,
        searches,
        status,
        system,
        ui,
    )

    return [
        *(ingest.bp, parse.bp, status.bp, live.bp, ui.bp, query.bp, metrics.bp, auth.bp),
        *(deadletters.bp, system.bp),  # operations
        *(heroku.bp, loki.bp, bulk.bp, otlp.bp),  # the shippers' protocols
        *(searches.bp, alerts.bp),  # saved searches and alerts
    ]


def register_custom_parsers(settings: Settings) -> list[str]:
    """Compile PARSER_PATTERNS / PARSER_PATTERNS_FILE once and add them to the factory.

    A bad pattern stops start-up with a message naming it, rather than failing per line.
    """
    from parsers import build_custom_parsers, get_factory

    spec = settings.parser_patterns
    if settings.parser_patterns_file:
        with open(settings.parser_patterns_file, encoding="utf-8") as handle:
            spec = handle.read()
    factory = get_factory()
    added = []
    for parser in build_custom_parsers(spec):
        factory.add_parser(parser, replace=True)
        added.append(parser.name)
    return added
