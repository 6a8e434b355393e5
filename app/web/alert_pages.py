"""The web UI's pages for saved searches (`/ui/searches`) and alerts (`/ui/alerts`):
static shells like `GET /`, under the same Content-Security-Policy; their scripts
(`app/static/js/saved.js`, `alerts.js`) talk to `/searches` and `/alerts`. Each page is
a route of its API's blueprint, so it needs the scope reading that API needs.
"""

from __future__ import annotations

from flask import Response, render_template, request

from app.web.ui import _HOST, content_security_policy

PAGE = {
    "responses": {"200": {"description": "The page.", "content": {"text/html": {"schema": {}}}}}
}


def page(template: str) -> Response:
    """The page rendered from `template`, with the UI's security headers."""
    host = request.host if _HOST.match(request.host or "") else None
    return Response(
        render_template(template),
        mimetype="text/html",
        headers={
            "Content-Security-Policy": content_security_policy(host),
            "X-Content-Type-Options": "nosniff",
            # Not "no-referrer": with it the pages' POSTs would carry `Origin: null`, which
            # an origin check refuses as cross-origin.
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-cache",
        },
    )
