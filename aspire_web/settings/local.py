"""A researcher's own machine: SQLite under var/, debug pages, a secret kept in var/secret_key."""

import secrets

from .base import *  # noqa: F401,F403
from .base import VAR_DIR

DEBUG = True
VAR_DIR.mkdir(parents=True, exist_ok=True)
_key_file = VAR_DIR / "secret_key"
if not _key_file.exists():
    _key_file.write_text(secrets.token_urlsafe(50))
SECRET_KEY = _key_file.read_text().strip()
WHITENOISE_USE_FINDERS = True
