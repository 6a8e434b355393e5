"""Who may do what: every request's key is checked against the scope its endpoint needs.

One policy for every face (`POLICY`, by blueprint): a route nobody listed needs `admin`,
so a new blueprint is closed until someone decides otherwise. With no key configured
Sluice is open for local use (and listens on loopback only, see `Settings.bind_host`).

A key arrives as `Authorization: Bearer <key>`, `X-API-Key: <key>`, HTTP Basic with the
key as the password (or as the user name when the password is empty, so both
`https://x:KEY@host/` and `https://KEY@host/` drain URLs work), Elasticsearch's
`Authorization: ApiKey base64(id:key)`, or the web UI's session cookie, which `/signin`
gives in exchange for a key that may read. Cookies travel by themselves, so a request
carrying one and changing state, and every WebSocket upgrade, must come from this origin.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import secrets
import time
from urllib.parse import urlsplit

from flask import (
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter, RateLimitExceeded
from flask_smorest import Blueprint

from app.web.errors import APIError, error_response
from config.keys import Key

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, description="Sign in to the web UI.")

SCOPES = ("ingest", "read", "admin")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _read_or_admin(method: str) -> str:
    return "read" if method in SAFE_METHODS else "admin"


# Blueprint -> the scope its routes need (or a function of the method). Not listed: admin.
POLICY = {
    **dict.fromkeys(("ingest", "heroku", "loki", "bulk", "otlp"), "ingest"),
    **dict.fromkeys(("query", "live", "metrics", "parse", "system", "api-docs"), "read"),
    **dict.fromkeys(("deadletters", "searches", "alerts"), _read_or_admin),
    "status": "read",  # /queue/status; /health is open (OPEN below)
    "ui": "any",  # the page for a read key; Elasticsearch's banner for any key
}
# Endpoints anyone may reach: they reveal no log and change nothing.
OPEN = frozenset(
    {
        "status.health",
        "static",
        "auth.signin",
        "auth.signin_form",
        "auth.signout",
        "loki.ready",
        "loki.buildinfo",
    }
)


def required_scope(endpoint: str, method: str) -> str | None:
    """The scope `endpoint` needs: None when open, "any" when any valid key will do."""
    if endpoint in OPEN:
        return None
    blueprint = endpoint.rpartition(".")[0]
    rule = POLICY.get(blueprint, "admin")
    return rule(method) if callable(rule) else rule


def presented_key() -> tuple[str | None, str]:
    """The key the request carries and how it came: (key, "header" | "session" | "")."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return value, "header"
    if scheme in ("basic", "apikey") and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8
            decoded = "" if scheme == "basic" else f":{value}"  # ES also sends the raw key
        user, _, password = decoded.partition(":")
        return (password or user or None), "header"
    if request.headers.get("X-API-Key"):
        return request.headers["X-API-Key"].strip(), "header"
    if session.get("key"):
        return session["key"], "session"
    return None, ""


def _same_origin() -> bool:
    """True when the request's Origin (if a browser sent one) is this host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser, or a same-origin GET
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


def _wants_html() -> bool:
    best = request.accept_mimetypes
    return any(kind in ("text/html", "application/xhtml+xml") and q > 0 for kind, q in best)


def unauthorized(scope: str, message: str):
    response = error_response(401, "unauthorized", message, scope=scope)
    response.headers["WWW-Authenticate"] = f'Bearer realm="sluice", scope="{scope}"'
    return response


def check_request():
    """The before-request hook: refuse, or note the key in `g.sluice_key` and go on."""
    endpoint = request.endpoint
    if endpoint is None:
        return None  # no such route: the 404/405 handlers answer
    upgrading = endpoint.startswith("live.")
    if (upgrading or request.method not in SAFE_METHODS) and not _same_origin():
        # A page on another site may not open the socket nor post through the browser.
        raise APIError(403, "cross_origin", "Requests from another origin are refused.")
    keyring = current_app.extensions["sluice"].keyring
    scope = required_scope(endpoint, request.method)
    if not keyring or scope is None:
        return None
    secret, via = presented_key()
    key = keyring.find(secret) if via == "header" else keyring.by_digest(secret or "")
    if key is None:
        if via == "session":
            session.clear()
        if request.method == "GET" and via != "header" and _wants_html():
            # A browser opening a page (or an API link) without a session: sign in first.
            return redirect(url_for("auth.signin_form", next=request.full_path.rstrip("?")))
        needed = "read" if scope == "any" else scope
        if secret:
            return unauthorized(needed, "The key is not known.")
        return unauthorized(
            needed,
            f"This needs a key with the {needed} scope: send `Authorization: Bearer <key>`"
            " or `X-API-Key: <key>`.",
        )
    if endpoint == "ui.index" and _wants_html():
        scope = "read"
    if scope != "any" and not key.allows(scope):
        raise APIError(
            403, "forbidden", f"The key {key.name!r} lacks the {scope} scope.", scope=scope
        )
    g.sluice_key = key
    return None


def _limit_key() -> str:
    key: Key | None = g.get("sluice_key")
    return f"{key.name if key else request.remote_addr}"


def _limit_for() -> str:
    settings = current_app.extensions["sluice"]
    scope = required_scope(request.endpoint or "", request.method)
    return settings.ingest_rate_limit if scope == "ingest" else settings.read_rate_limit


def _retry_after_only_when_refused(response):
    """Flask-Limiter sets Retry-After on every answer; it means something only on a refusal."""
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def _not_limited() -> bool:
    return g.get("sluice_key") is None or _limit_for() == "off"


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without their per-request cost on the API: a
    request without the cookie (every shipper's) gets an empty session at once, and the
    signer is built once per process, not once per request (the secret is fixed at start)."""

    def __init__(self) -> None:
        self._signer = None

    def get_signing_serializer(self, app):
        if self._signer is None:
            self._signer = super().get_signing_serializer(app)
        return self._signer

    def open_session(self, app, request):
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Install the policy and the per-key rate limits on `app`."""
    settings = app.extensions["sluice"]
    # Open (no keys): no session is ever read, but Flask needs a secret to touch one.
    app.secret_key = settings.session_secret or secrets.token_hex(32)
    app.config.update(
        SESSION_COOKIE_NAME="sluice_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    app.session_interface = CookieSessions()
    app.before_request(check_request)
    # Limits are per key: with no key (open) or every limit off, none can apply, and
    # Flask-Limiter's three hooks would cost every request for nothing.
    if settings.keyring and {settings.ingest_rate_limit, settings.read_rate_limit} != {"off"}:
        _init_limiter(app, settings)


def _init_limiter(app: Flask, settings) -> None:
    app.after_request(_retry_after_only_when_refused)  # runs after the limiter's own
    limiter = Limiter(
        key_func=_limit_key,
        app=app,
        storage_uri=settings.redis_url,
        key_prefix=f"{settings.key_prefix}:ratelimit",
        application_limits=[_limit_for],
        headers_enabled=True,
        strategy="fixed-window",
        swallow_errors=True,  # Redis down: ingest answers its own 503, not the limiter's 500
    )
    # A filter, not `application_limits_exempt_when`: filters run before the limiter
    # resolves (and parses) its limits, which an unlimited request need not pay for.
    limiter.request_filter(_not_limited)
    app.extensions["sluice_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, _rate_limited)


def _rate_limited(exc: RateLimitExceeded):
    limiter = current_app.extensions["sluice_limiter"]
    reset = limiter.current_limit.reset_at if limiter.current_limit else time.time() + 1
    wait = max(1, math.ceil(reset - time.time()))
    return error_response(
        429,
        "rate_limited",
        f"This key may make {exc.description} requests of this kind; retry in {wait} s.",
        wait,
        scope=required_scope(request.endpoint or "", request.method),
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never `//evil` or a full URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@bp.get("/signin")
@bp.doc(responses={"200": {"description": "The sign-in form.", "content": {"text/html": {}}}})
def signin_form():
    """The web UI's sign-in page."""
    return _page(render_template("signin.html", next=_safe_next(request.args.get("next"))))


@bp.post("/signin")
@bp.doc(
    responses={
        "303": {"description": "Signed in: a session cookie, and on to `next`."},
        "401": {"description": "The key is unknown or may not read.", "content": {"text/html": {}}},
    }
)
def signin():
    """Exchange a read key for a signed, HttpOnly, SameSite=Strict session cookie."""
    keyring = current_app.extensions["sluice"].keyring
    target = _safe_next(request.form.get("next"))
    key = keyring.find(request.form.get("key", "").strip())
    if not keyring:
        return redirect(target, 303)
    if key is None or not key.allows("read"):
        log.warning("sign-in refused from %s", request.remote_addr)
        page = render_template("signin.html", next=target, error="That key cannot read logs.")
        return _page(page, 401)
    session.clear()
    session.permanent = True
    session["key"] = key.sha256
    return redirect(target, 303)


@bp.post("/signout")
@bp.doc(responses={"303": {"description": "Signed out; back to the sign-in page."}})
def signout():
    """Forget the session cookie."""
    session.clear()
    return redirect(url_for("auth.signin_form"), 303)


def _page(html: str, status: int = 200):
    from app.web.ui import content_security_policy

    return (
        html,
        status,
        {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": content_security_policy(None),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "basic": {"type": "http", "scheme": "basic", "description": "The key as the password."},
    "session": {"type": "apiKey", "in": "cookie", "name": "sluice_session"},
}


def document(api, app: Flask) -> None:
    """Say in /openapi.json which scope each operation needs, and its 401 and 403."""
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    endpoints = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            endpoints[(path, method.lower())] = rule.endpoint
    for path, operations in api.spec._paths.items():  # apispec keeps the paths here
        for method, operation in operations.items():
            endpoint = endpoints.get((path, method))
            if endpoint is None:
                continue
            scope = required_scope(endpoint, method.upper())
            if scope is None:
                operation["security"] = []
                continue
            needed = "read" if scope == "any" else scope
            operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
            operation["description"] = (
                operation.get("description", "") + f"\n\nNeeds a key with the `{needed}` scope."
            ).strip()
            operation["responses"].setdefault(
                "401", {"description": "No key, or an unknown one.", "content": error}
            )
            operation["responses"].setdefault(
                "403", {"description": f"The key lacks the {needed} scope.", "content": error}
            )
