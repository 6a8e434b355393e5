"""Flower's settings (Flower reads `flowerconfig.py` from the working directory).

Bound like the web process: loopback only while Sluice has no keys; behind basic auth
(FLOWER_BASIC_AUTH, else `admin:<key>` for each SLUICE_ADMIN_KEYS key) whenever it has.
"""

# Every top-level name here is read as a Flower option, so imports carry a leading _.
import logging as _logging

from config import load_settings as _load_settings

_settings = _load_settings()

address = _settings.bind_host
port = _settings.flower_port
if _settings.flower_credentials:
    basic_auth = _settings.flower_credentials
elif _settings.keyring:
    raise SystemExit(
        "FLOWER_BASIC_AUTH must be set (user:password): Sluice has keys, but none in"
        " SLUICE_ADMIN_KEYS to give Flower its password"
    )
else:
    _logging.getLogger("flower").warning(
        "no keys configured: Flower is open and listens on %s only", address
    )
