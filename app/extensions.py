"""Flask extensions, created unbound here and bound in `create_app` (flask-sock's pattern)."""

from flask_sock import Sock

sock = Sock()
