"""Settings shared by every environment. Environment-specific files import * from here."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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
    "aspire_web.middleware.DatabaseUnavailableMiddleware",  # a locked/unreachable database answers 503
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
MEDIA_ROOT = Path(os.environ.get("ASPIRE_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

# --- Media: every file the engine writes (keyframes, overlays) goes through STORAGES["default"] -----
# (runs/storage.py has the whole list and what each setting does.) ASPIRE_STORAGE=local (default): files
# under MEDIA_ROOT. ASPIRE_STORAGE=s3: objects in an S3-compatible bucket (AWS, MinIO, Ceph, R2, ...)
# through django-storages; every web and worker host then shares the bucket instead of a directory.
# Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY [/
# AWS_SESSION_TOKEN] in the environment, ~/.aws, an instance role); they are never put in settings.
ASPIRE_STORAGE = os.environ.get("ASPIRE_STORAGE", "local").strip().lower() or "local"
if ASPIRE_STORAGE == "local":
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif ASPIRE_STORAGE == "s3":
    if not os.environ.get("ASPIRE_S3_BUCKET"):
        raise ImproperlyConfigured("ASPIRE_STORAGE=s3 needs ASPIRE_S3_BUCKET (the bucket's name)")
    _s3_endpoint = os.environ.get("ASPIRE_S3_ENDPOINT_URL") or None
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["ASPIRE_S3_BUCKET"],
            "endpoint_url": _s3_endpoint,  # None: AWS itself
            "region_name": os.environ.get("ASPIRE_S3_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
            "location": os.environ.get("ASPIRE_S3_PREFIX", "").strip("/"),  # a key prefix inside the bucket
            # Path-style (endpoint/bucket/key) suits MinIO and other self-hosted stores; AWS picks itself.
            "addressing_style": os.environ.get("ASPIRE_S3_ADDRESSING_STYLE") or ("path" if _s3_endpoint else None),
            "signature_version": "s3v4",
            "default_acl": None,  # private objects; readers get signed URLs or go through the web app
            "querystring_auth": True,
            # Seconds a signed keyframe URL stays valid (also how long it outlives a withdrawn access).
            "querystring_expire": int(os.environ.get("ASPIRE_S3_URL_EXPIRE", 300)),
            # Engine names are unique per episode attempt: no existence check (one request less per file).
            "file_overwrite": True,
            "object_parameters": {"CacheControl": "private, max-age=86400"},
        },
    }
else:
    raise ImproperlyConfigured(f"ASPIRE_STORAGE={ASPIRE_STORAGE!r}: use local or s3")
# How pages, the API and share links hand out a keyframe after checking access (runs.media):
# "redirect" sends the client to the storage's signed URL (S3: the browser fetches from the bucket, so
# it must reach ASPIRE_S3_ENDPOINT_URL); "stream" has the web process read the file and send it. The
# default: redirect for s3, stream for local (a filesystem has no signed URLs).
ASPIRE_MEDIA_SERVE = os.environ.get("ASPIRE_MEDIA_SERVE", "redirect" if ASPIRE_STORAGE == "s3" else "stream")
if ASPIRE_MEDIA_SERVE not in ("redirect", "stream"):
    raise ImproperlyConfigured(f"ASPIRE_MEDIA_SERVE={ASPIRE_MEDIA_SERVE!r}: use redirect or stream")
STORAGES = {
    "default": _media_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "login"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
LOGIN_REDIRECT_URL = "runs:list"
LOGOUT_REDIRECT_URL = "runs:list"

# --- Redis, Celery, Channels ---------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# The database is the truth and messages are hints (runs.work, runs.reconcile): every task is idempotent
# and claims its work by a conditional write, so a message delivered twice does nothing the second time
# and a message lost with its broker is re-sent by the reconciler. Hence the short visibility timeout:
# a task is at most one episode (or one actor decision), so a message reserved by a worker that died is
# handed to another within minutes, not hours.
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # episodes are long; do not hoard tasks on a busy worker
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # results live in the database
# A prefork child warms up (ASPIRE["WARM_UP_TASKS"]: one episode, seconds to a minute on a busy machine)
# before it tells the parent it is alive; Celery's default wait for that is 4 s.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 180
# One episode: ASPIRE["MAX_EPISODE_WALL_SECONDS"] (300 s) of program time plus the simulator's build,
# reset and keyframes; an agent's round (actor_step) may take longer, and the skill admission runs a few
# dozen episodes in one task: the global limit is theirs, run_episode has its own (runs.tasks).
CELERY_TASK_TIME_LIMIT = 3600
CELERY_TASK_SOFT_TIME_LIMIT = 3600 - 60
# 8 min > the longest episode (300 s + build and margin): a reserved message whose worker died comes back
# after 8 min; a longer task redelivered meanwhile finds its live owner and does nothing.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 8 * 60}
CELERY_TASK_DEFAULT_QUEUE = "aspire"
# Outlive broker outages: keep reconnecting (backoff in kombu), at start-up too.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None

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
    # Token first: DRF takes the WWW-Authenticate header from the first class, so a missing or bad token
    # answers 401 with "WWW-Authenticate: Token" (session first made both a header-less 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",  # scripts: "Authorization: Token <key>"
        "rest_framework.authentication.SessionAuthentication",  # the browsable API and pages' own scripts
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bounded in depth and size (runs.api.parsers); forms for the browsable API.
    "DEFAULT_PARSER_CLASSES": [
        "runs.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "runs.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "runs.api.pagination.Pagination",
    "PAGE_SIZE": 50,
}
# The largest request body read into memory (JSON, forms), bytes; Django's default, 2.5 MiB, fits a
# 200,000-character program. Over it: 413 from the API (runs.api.parsers), 400 from pages.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("ASPIRE_MAX_BODY_BYTES", 2_621_440))
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
    # No validator badge: Swagger UI would load it from validator.swagger.io for any non-localhost host.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- ASPIRE engine ----------------------------------------------------------------------------------
ASPIRE = {
    "EPISODE_WALL_SECONDS": float(os.environ.get("ASPIRE_EPISODE_WALL_SECONDS", 120)),
    "SANDBOX_MEMORY_MB": int(os.environ.get("ASPIRE_SANDBOX_MEMORY_MB", 1024)),
    # What the robot API's perception is (worker.robot.segmenter): "realistic" (default: masks with a
    # SAM-class model's errors, the prompt as label, noisy depth) or "oracle" (the simulator's exact
    # segmentation render with object names, exact depth: an upper bound, never comparable with the
    # realistic mode). A run may choose; every run stores the mode it ran with.
    "PERCEPTION_MODE": os.environ.get("ASPIRE_PERCEPTION_MODE", "realistic"),
    "MAX_SEEDS_PER_RUN": 200,
    "MAX_TASKS_PER_EXPERIMENT": 120,
    # An upper bound on an experiment's episodes (experiments.services.estimate_episodes: actors x rounds
    # x K x debug seeds + held-out seeds) over this is refused at launch, with the estimate shown first.
    "MAX_EXPERIMENT_EPISODES": int(os.environ.get("ASPIRE_MAX_EXPERIMENT_EPISODES", 60_000)),
    # Request bodies: JSON nested deeper than this answers 400 (runs.api.parsers).
    "MAX_JSON_DEPTH": 64,
    # Queues of the experiment tasks: point them at different queues to give actors or episodes their
    # own workers (other machines join by consuming these queues from the same Redis).
    "QUEUES": {
        "coordinator": os.environ.get("ASPIRE_QUEUE_COORDINATOR", ""),
        "actors": os.environ.get("ASPIRE_QUEUE_ACTORS", ""),
        "episodes": os.environ.get("ASPIRE_QUEUE_EPISODES", ""),
    },
    "OPENAI_BASE_URL": os.environ.get("ASPIRE_OPENAI_BASE_URL", ""),
    # Durable work (runs.heartbeat, runs.outbox, runs.reconcile). A worker beats every 5 s; one silent
    # for OWNER_TIMEOUT_SECONDS is dead and its episodes and actor steps are retaken. The longest episode
    # time limit a run may ask for: it bounds one task, which the visibility timeout above must exceed.
    # Work whose message the broker no longer holds (lost with a restarted Redis, or with a worker that
    # died) is sent again; when the broker cannot be inspected, a message no worker picked up within
    # RESEND_AFTER_SECONDS is (runs.outbox.Pending).
    "OWNER_TIMEOUT_SECONDS": float(os.environ.get("ASPIRE_OWNER_TIMEOUT_SECONDS", 30)),
    "RESEND_AFTER_SECONDS": float(os.environ.get("ASPIRE_RESEND_AFTER_SECONDS", 600)),
    # A message a worker reserved and has not started this long after it was sent is sent again (its
    # worker died holding it; runs.outbox.Pending). Longer than a worker process's warm-up.
    "RESERVED_GRACE_SECONDS": float(os.environ.get("ASPIRE_RESERVED_GRACE_SECONDS", 120)),
    "MAX_EPISODE_WALL_SECONDS": 300,
    "RECONCILE_SECONDS": float(os.environ.get("ASPIRE_RECONCILE_SECONDS", 30)),
    # Tasks each worker process runs one episode of before taking work (worker.engine.warm_up), so the
    # first episode pays no simulator build, model load or import: comma-separated keys, "" for none.
    "WARM_UP_TASKS": [
        key.strip() for key in os.environ.get("ASPIRE_WARM_UP_TASKS", "robosuite:Lift").split(",") if key.strip()
    ],
}

# --- Skill library (skills.conf has the defaults and their meaning) ---------------------------------
SKILLS = {
    "MIN_FLIPPED_SEEDS": int(os.environ.get("ASPIRE_SKILL_MIN_FLIPPED_SEEDS", 1)),
    "REPLACEMENT_MARGIN": float(os.environ.get("ASPIRE_SKILL_REPLACEMENT_MARGIN", 0.1)),
}

# Expected conditions (Redis or the database away, a browser that hung up) are logged as one line, not a
# traceback (aspire_web/logfilters.py); the filter sits on the one handler every logger propagates to.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"expected_one_line": {"()": "aspire_web.logfilters.OneLineExpected"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["expected_one_line"]}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "robosuite_logs": {"level": "ERROR"},
        # These propagate to root, so the console handler's filter covers them; named to say so.
        "django": {"level": "INFO"},
        "daphne": {"level": "INFO"},
        "channels": {"level": "INFO"},
        "celery": {"level": "INFO"},
    },
}
