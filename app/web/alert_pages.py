"""The web UI's pages for saved searches (`/ui/searches`) and alerts (`/ui/alerts`).

Static shells like `GET /`, under the same Content-Security-Policy; their scripts
(`app/static/js/saved.js`, `alerts.js`) talk to `/searches` and `/alerts`.
"""

from __future__ import annotations

from flask import Response, render_template, request
from flask_smorest import Blueprint

from app.web.ui import _HOST, content_security_policy

bp = Blueprint("alert_pages", __name__, description="The web UI's saved-search and alert pages.")

PAGE = {
    "responses": {"200": {"description": "The page.", "content": {"text/html": {"schema": {}}}}}
}


def _page(template: str) -> Response:
    host = request.host if _HOST.match(request.host or "") else None
    return Response(
        render_template(template),
        mimetype="text/html",
        headers={
            "Content-Security-Policy": content_security_policy(host),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@bp.get("/ui/searches")
@bp.doc(**PAGE)
def searches_page():
    """The saved searches: open one in the search view, rename or delete it."""
    return _page("searches.html")


@bp.get("/ui/alerts")
@bp.doc(**PAGE)
def alerts_page():
    """The alerts: create one, see each one's state and history."""
    return _page("alerts.html")
