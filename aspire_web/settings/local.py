"""A researcher's own machine (what `up` runs): SQLite under var/, a secret kept in var/secret_key.

DEBUG is off unless ASPIRE_DEBUG=1: an instance reachable from a browser must never show a traceback or
the list of URL patterns. Static files are served by WhiteNoise either way (from the finders, so a fresh
checkout works before collectstatic; `up` runs collectstatic too). Hosts: localhost, 127.0.0.1 and [::1],
plus the comma-separated names in ASPIRE_ALLOWED_HOSTS (e.g. the machine's LAN name when `up --host
0.0.0.0`).
"""

import os
import secrets

from .base import *  # noqa: F401,F403
from .base import ALLOWED_HOSTS, VAR_DIR

DEBUG = os.environ.get("ASPIRE_DEBUG", "") == "1"
ALLOWED_HOSTS = list(
    dict.fromkeys(
        [*ALLOWED_HOSTS, "localhost", "127.0.0.1", "[::1]"]
        + [h.strip() for h in os.environ.get("ASPIRE_ALLOWED_HOSTS", "").split(",") if h.strip()]
    )
)
VAR_DIR.mkdir(parents=True, exist_ok=True)
_key_file = VAR_DIR / "secret_key"
if not _key_file.exists():
    _key_file.write_text(secrets.token_urlsafe(50))
SECRET_KEY = _key_file.read_text().strip()
WHITENOISE_USE_FINDERS = True
