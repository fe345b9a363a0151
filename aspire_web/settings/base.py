"""Settings shared by every environment. Environment-specific files import * from here."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("ASPIRE_VAR_DIR", BASE_DIR / "var"))

DEBUG = False
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    # The apps, lowest layer first: each imports only the apps listed before it (and worker/).
    "accounts",
    "sharing",
    "runs",
    "skills",
    "experiments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "aspire_web.urls"
WSGI_APPLICATION = "aspire_web.wsgi.application"
ASGI_APPLICATION = "aspire_web.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def sqlite_database(path):
    # WAL lets the web process read while the worker writes; IMMEDIATE transactions take the write
    # lock up front instead of failing with "database is locked" on upgrade.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
    }


DATABASES = {
    "default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)
    if os.environ.get("DATABASE_URL")
    else sqlite_database(VAR_DIR / "db.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(os.environ.get("ASPIRE_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

LOGIN_URL = "login"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
LOGIN_REDIRECT_URL = "runs:list"
LOGOUT_REDIRECT_URL = "runs:list"

# --- Redis, Celery, Channels ---------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # episodes are long; do not hoard tasks on a busy worker
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # results live in the database
CELERY_TASK_TIME_LIMIT = 6 * 3600
CELERY_TASK_SOFT_TIME_LIMIT = 6 * 3600 - 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7 * 3600}
CELERY_TASK_DEFAULT_QUEUE = "aspire"

CHANNEL_LAYERS = {
    "default": {
        # The list-based layer: bounded per-viewer queues (capacity) that outlive short hiccups (expiry).
        # The pub/sub layer measured the same with 50 viewers (bench/live_latency.py) but keeps nothing
        # for a listener that is briefly away and buffers without bound in the web process.
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # socket_timeout: redis-py 8 defaults it to 5 s, the same as channels-redis's blocking receive
        # (BZPOPMIN, 5 s), so every idle consumer died with "Timeout reading from"; keep it well above.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 1000, "expiry": 60},
    },
}

# --- REST API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",  # the browsable API and pages' own scripts
        "rest_framework.authentication.TokenAuthentication",  # scripts: "Authorization: Token <key>"
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "runs.api.pagination.Pagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ASPIRE web API",
    "DESCRIPTION": "Tasks, runs (launch, cancel), candidates, episodes, primitive-call traces and keyframes. "
    "Authenticate with a session or with `Authorization: Token <key>` (make a key on your account page).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc assets come from drf-spectacular-sidecar, served from static/, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- ASPIRE engine ----------------------------------------------------------------------------------
ASPIRE = {
    "EPISODE_WALL_SECONDS": float(os.environ.get("ASPIRE_EPISODE_WALL_SECONDS", 120)),
    "SANDBOX_MEMORY_MB": int(os.environ.get("ASPIRE_SANDBOX_MEMORY_MB", 1024)),
    "MAX_SEEDS_PER_RUN": 200,
    "MAX_TASKS_PER_EXPERIMENT": 120,
    # Queues of the experiment tasks: point them at different queues to give actors or episodes their
    # own workers (other machines join by consuming these queues from the same Redis).
    "QUEUES": {
        "coordinator": os.environ.get("ASPIRE_QUEUE_COORDINATOR", ""),
        "actors": os.environ.get("ASPIRE_QUEUE_ACTORS", ""),
        "episodes": os.environ.get("ASPIRE_QUEUE_EPISODES", ""),
    },
    "OPENAI_BASE_URL": os.environ.get("ASPIRE_OPENAI_BASE_URL", ""),
}

# --- Skill library (skills.conf has the defaults and their meaning) ---------------------------------
SKILLS = {
    "MIN_FLIPPED_SEEDS": int(os.environ.get("ASPIRE_SKILL_MIN_FLIPPED_SEEDS", 1)),
    "REPLACEMENT_MARGIN": float(os.environ.get("ASPIRE_SKILL_REPLACEMENT_MARGIN", 0.1)),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"robosuite_logs": {"level": "ERROR"}},
}
