"""`GET /`: the web UI (live tail, search, volume histogram), plain HTML, CSS and JS.

The page is a static shell; `app/static/js/` talks to `/ws/logs` and the query API.
Log content is untrusted, so the JS only ever renders it as text, and the page is served
with a Content-Security-Policy that allows no inline script and no third-party origin: a
message that slipped through as markup would still have nothing it could run.
"""

from __future__ import annotations

import re

from flask import Response, current_app, render_template, request, session, url_for
from flask_smorest import Blueprint

from app.web.bulk import banner

bp = Blueprint("ui", __name__, description="The web UI.")

# A Host header is client-supplied: only a plain host[:port] goes into the policy or a link.
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


def content_security_policy(host: str | None) -> str:
    """The page's policy: our own scripts, styles and images only; sockets to this host."""
    # 'self' covers ws(s) to the same origin in CSP3 browsers; naming the host keeps
    # older ones (CSP2 treats 'self' as http(s) only) working.
    sockets = f" ws://{host} wss://{host}" if host else ""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self'{sockets}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def flower_url(host: str | None, port: int) -> str | None:
    """Flower on the same host name as this page, at its own port."""
    if not host:
        return None
    name = _HOST.match(host).group(1)
    return f"{request.scheme}://{name}:{port}/"


def _wants_html() -> bool:
    # Browsers always list text/html; shippers probing for Elasticsearch never do (and
    # curl's */* is not a browser either).
    return any(
        kind in ("text/html", "application/xhtml+xml") and quality > 0
        for kind, quality in request.accept_mimetypes
    )


# The header's operations links, in order: one place to add a page (saved searches, ...).
# Each is (label, endpoint or URL, element id); Flower and the API are added when present.
NAV = [
    ("System", "system.page", "system-link"),
    ("Saved searches", "searches.searches_page", "searches-link"),
    ("Alerts", "alerts.alerts_page", "alerts-link"),
]


def nav_links(host: str | None) -> list[dict]:
    """The header's links for this request: NAV, then Flower and the API description."""
    links = [
        {"label": label, "href": url_for(target), "id": id_, "current": request.endpoint == target}
        for label, target, id_ in NAV
    ]
    flower = flower_url(host, current_app.extensions["sluice"].flower_port)
    if flower:
        links.append({"label": "Flower", "href": flower, "id": "flower-link", "external": True})
    if "/openapi.json" in {rule.rule for rule in current_app.url_map.iter_rules()}:
        links.append({"label": "API", "href": "/openapi.json", "id": "api-link", "external": True})
    return links


def page_host() -> str | None:
    """The request's Host when it is a plain host[:port] (else None: not trusted)."""
    return request.host if _HOST.match(request.host or "") else None


def render_page(template: str, **context) -> Response:
    """A page of the UI with its policy headers; `nav` is the header's links."""
    host = page_host()
    html = render_template(template, nav=nav_links(host), signed_in="key" in session, **context)
    # A Response, so the documented answer (`bp.response`) passes it through as it is.
    return Response(
        html,
        mimetype="text/html",
        headers={
            "Content-Security-Policy": content_security_policy(host),
            "X-Content-Type-Options": "nosniff",
            # "no-referrer" would make forms send `Origin: null`, refused as cross-origin.
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-cache",
        },
    )


@bp.get("/")
@bp.doc(
    responses={
        "200": {
            "description": "The page for a browser; Elasticsearch's banner for anything else.",
            "content": {"text/html": {"schema": {}}, "application/json": {"schema": {}}},
        }
    }
)
def index():
    """The UI's single page for a browser; Elasticsearch's banner for anything else."""
    if not _wants_html():
        return banner()
    return render_page("index.html")
