"""Arbiter settings. Everything that varies between machines comes from config.env."""
from __future__ import annotations

import os
import secrets
import time
from datetime import timedelta
from pathlib import Path

import dj_database_url

from config.env import env_bool, env_int, env_list, env_path, env_paths, env_rate, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the app writes on the embedded defaults lives here: SQLite, broker folders, artifacts.
DATA_DIR = env_path("ARBITER_DATA_DIR", BASE_DIR / "var")
DATA_DIR.mkdir(parents=True, exist_ok=True)
ARTIFACT_ROOT = env_path("ARTIFACT_ROOT", DATA_DIR / "artifacts")
ARTIFACT_ROOT.mkdir(parents=True, exist_ok=True)
# The only folders staff may register a model from in the browser (DESIGN.md: Roles): a path is
# resolved, symlinks included, and must stay inside one of them; a relative path starts at the
# first. Empty (ARBITER_MODEL_ROOTS=) turns registration from a path off in the browser.
# `manage.py add_model` is not bound by it: its user already has the disk.
_DEFAULT_MODEL_INBOX = DATA_DIR / "model-inbox"
ARBITER_MODEL_ROOTS = env_paths("ARBITER_MODEL_ROOTS", [_DEFAULT_MODEL_INBOX])
if ARBITER_MODEL_ROOTS == [_DEFAULT_MODEL_INBOX]:
    _DEFAULT_MODEL_INBOX.mkdir(exist_ok=True)  # so an operator sees where to drop a model folder


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    # A generated key kept beside the data, so sessions survive restarts without configuration.
    # Created with mode 0600 in the same call that creates it (O_EXCL): never world-readable,
    # not even for the moment between writing and chmod; a process that loses the race reads
    # the winner's key.
    key_file = DATA_DIR / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    for _ in range(50):  # another process may have created it and not written it yet
        key = key_file.read_text().strip()
        if key:
            return key
        time.sleep(0.1)
    raise RuntimeError(f"{key_file} is empty: delete it (a new key is generated) or set SECRET_KEY")


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Production (README: Production): HTTPS only, secure cookies, HSTS --------------------------
# ARBITER_HTTPS: the site is served over HTTPS (directly or by a proxy that terminates TLS).
ARBITER_HTTPS = env_bool("ARBITER_HTTPS", False)
# ARBITER_BEHIND_PROXY: a reverse proxy in front sets X-Forwarded-Proto and appends the client's
# address to X-Forwarded-For; trust both (only then: a client could send them itself).
ARBITER_BEHIND_PROXY = env_bool("ARBITER_BEHIND_PROXY", False)
if ARBITER_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if ARBITER_HTTPS:
    SECURE_SSL_REDIRECT = True
    # Load balancers probe over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("ARBITER_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ARBITER_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("ARBITER_HSTS_PRELOAD", True)
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotation",
    "training",
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
    "config.middleware.ContentSecurityPolicyMiddleware",
    # Last: turns a login refused by axes into its lockout page (config/security.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# --- Database: SQLite (WAL, IMMEDIATE) by default, PostgreSQL with DATABASE_URL -------------
_database_url = env_url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # The rater's hot statements (annotation/sql.py: cursor) bind parameters on the server,
        # and psycopg prepares each after this many runs on a connection, so PostgreSQL stops
        # parsing and planning them on every request. Everything else keeps Django's
        # client-side binding, which never prepares. 0 turns preparing off: set it behind a
        # transaction-mode pooler that cannot keep prepared statements (PgBouncer < 1.21).
        _prepare = env_int("DB_PREPARE_THRESHOLD", 5, minimum=0)
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = _prepare or None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "arbiter.sqlite3",
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so two writers queue on the busy
                # timeout instead of failing with "database is locked" on lock upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
            },
        }
    }
# Parallel test runs (CI on SQLite and PostgreSQL, several developers) need distinct test databases.
_test_db_name = env_str("ARBITER_TEST_DB_NAME")
if _test_db_name:
    DATABASES["default"]["TEST"] = {"NAME": _test_db_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request when it is missing
# Without a collectstatic step WhiteNoise serves from the finders (dev and the embedded start).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Cache: API write counters (config/security.py). Per process unless CACHE_URL points at Redis,
# which several gunicorn workers must share for the limits to hold across them.
_cache_url = env_url("CACHE_URL", ("redis", "rediss", "locmem"))
if _cache_url and not _cache_url.startswith("locmem"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url, "KEY_PREFIX": "arbiter"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "arbiter"}}

# --- Logins: lockout per (username, address) with django-axes (config/security.py) ----------
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("ARBITER_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ARBITER_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
# The pair, not the user alone: an attacker elsewhere cannot lock the real user out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login; failures are still recorded
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"
AXES_VERBOSE = False

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Uploads stream to a temporary file past 2.5 MB: a large import never sits in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Each uploaded file is counted on its way in and stopped past ARBITER_IMPORT_MAX_BYTES
# (config/request_limits.py), then kept in memory or streamed to a temporary file as usual.
FILE_UPLOAD_HANDLERS = [
    "config.request_limits.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 50 * 1024 * 1024, minimum=1024)
UPLOAD_DIR = DATA_DIR / "uploads"

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "annotation.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 100,
    # Writes per user (per address signed out): a cache counter, no database round trip.
    "DEFAULT_THROTTLE_CLASSES": ["config.security.WriteRateThrottle"],
}
# A rater answering as fast as a script can makes about 10 writes a second (next + submit).
ARBITER_API_WRITE_RATE = env_rate("ARBITER_API_WRITE_RATE", "1800/minute")
SPECTACULAR_SETTINGS = {
    "TITLE": "Arbiter API",
    "DESCRIPTION": "Human preference feedback on LLM outputs: projects, items, judgments, datasets, training.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files (drf-spectacular-sidecar): no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # ModelArtifact's kind/source share field names with annotation's choices; name them apart.
    "ENUM_NAME_OVERRIDES": {
        "ModelKindEnum": "training.models.ModelArtifact.Kind",
        "ModelSourceEnum": "training.models.ModelArtifact.Source",
        "TrainingRunStatusEnum": "training.models.TrainingRun.Status",
        "JudgmentKindEnum": "annotation.kinds.Kind",
        "JudgmentSourceEnum": "annotation.models.judgment.Judgment.Source",
        "ImportStatusEnum": "annotation.models.item.ImportBatch.Status",
        "SnapshotStatusEnum": "annotation.models.snapshot.DatasetSnapshot.Status",
    },
}

# --- Celery: filesystem broker by default, Redis/RabbitMQ with CELERY_BROKER_URL --------------
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", ("redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem", "memory")) or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # Broadcast (pidbox) exchanges; kombu's default is ./control in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
    }
# The database row is the truth (DESIGN.md): tasks ignore their results. The one exception is
# scoring (training.tasks.score_responses): the web process waits a few seconds for the scores, so
# a result backend beside the broker carries them back (files, Redis, or RabbitMQ's rpc replies).
if CELERY_BROKER_URL.startswith("filesystem://"):
    _result_backend = f"file://{DATA_DIR / 'results'}"
    (DATA_DIR / "results").mkdir(parents=True, exist_ok=True)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    _result_backend = CELERY_BROKER_URL
elif CELERY_BROKER_URL.startswith("memory://"):
    _result_backend = "cache+memory://"
else:
    _result_backend = "rpc://"
CELERY_RESULT_BACKEND = env_url("CELERY_RESULT_BACKEND", ("file", "redis", "rediss", "rpc", "cache+memory")) or _result_backend
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = "default"
# Short jobs never wait behind a training run: judge, evaluation, generation, queue scoring and
# model registration go to `jobs`, with a worker of its own (scripts/start.sh, docs/scaling.md);
# everything else of training.tasks (the runs) to `gpu`. Exact names win over the pattern.
CELERY_TASK_ROUTES = {
    "training.tasks.judge_run": {"queue": "jobs"},
    "training.tasks.run_job": {"queue": "jobs"},
    "training.tasks.selection_score": {"queue": "jobs"},
    "training.tasks.model_register": {"queue": "jobs"},
    "training.tasks.*": {"queue": "gpu"},
}
# A message is acknowledged only after the task returns, so a killed worker's task is redelivered;
# the task itself checks the row and does nothing when the work is already done.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# /health/ (config/health.py): seconds each check may take, and how long a worker ping is reused.
ARBITER_HEALTH_TIMEOUT = 1.0
ARBITER_HEALTH_CACHE_SECONDS = env_int("ARBITER_HEALTH_CACHE_SECONDS", 5, minimum=0)

# --- Arbiter ----------------------------------------------------------------------------------
ARBITER_IMPORT_BATCH_SIZE = env_int("ARBITER_IMPORT_BATCH_SIZE", 2000, minimum=1)
ARBITER_RUN_STALE_SECONDS = env_int("ARBITER_RUN_STALE_SECONDS", 120, minimum=5)
# Training methods of your own packages, "method=package.module,..." (training/recipes/catalog.py).
ARBITER_EXTRA_RECIPES = env_str("ARBITER_EXTRA_RECIPES", "")
# Expired leases go back to the pool at most this often per process and project (not per request).
ARBITER_LEASE_SWEEP_SECONDS = env_int("ARBITER_LEASE_SWEEP_SECONDS", 5, minimum=0)
# Above this many judgments the dataset card links to the quality page instead of computing agreement.
ARBITER_CARD_AGREEMENT_MAX = env_int("ARBITER_CARD_AGREEMENT_MAX", 100_000, minimum=0)
# A run (or a judge, evaluation or generation job) whose worker went silent is claimed this many
# times in all, then failed (training/runs/lifecycle.py).
ARBITER_RUN_MAX_ATTEMPTS = env_int("ARBITER_RUN_MAX_ATTEMPTS", 3, minimum=1)
# Scoring runs on a `score` worker; the web process waits this long for it, then answers 503.
ARBITER_SCORE_TIMEOUT_SECONDS = env_int("ARBITER_SCORE_TIMEOUT_SECONDS", 30, minimum=1)
# Beat (the default worker runs with -B) looks for silent runs every minute; the task goes to `default`.
CELERY_BEAT_SCHEDULE = {
    "training-runs-check-stale": {"task": "training.tasks.runs_check_stale", "schedule": 60.0},
    # AI judge jobs whose worker went silent (training/judge/services.py).
    "training-judge-jobs-check-stale": {"task": "training.tasks.judge_jobs_check_stale", "schedule": 60.0},
    # Evaluations and generation batches whose worker went silent (training/loop/jobs.py).
    "training-jobs-check-stale": {"task": "training.tasks.jobs_check_stale", "schedule": 60.0},
    # Imports whose process died (annotation/importers/liveness.py).
    "annotation-imports-recover": {"task": "annotation.imports_recover", "schedule": 60.0},
    # Snapshot builds whose worker died (a stale heartbeat: annotation/exports/build.py).
    "annotation-snapshots-recover": {"task": "annotation.snapshots_recover", "schedule": 60.0},
}

# A failed CSRF check renders inside the layout with the reason, like any 403 (config/errors.py).
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
# --- Input limits (README: Configuration, "Limits on input") --------------------------------
# JSON nested deeper than this is refused with a 400 naming the field (API, labelling page, imports).
ARBITER_JSON_MAX_DEPTH = env_int("ARBITER_JSON_MAX_DEPTH", 32, minimum=4)
# Uploads: the most bytes an import may decompress to, and the longest line (one record) it may hold;
# both checked while reading, so a gzip bomb stops in constant memory.
ARBITER_IMPORT_MAX_BYTES = env_int("ARBITER_IMPORT_MAX_BYTES", 4 * 1024**3, minimum=1024)
ARBITER_IMPORT_MAX_LINE_BYTES = env_int("ARBITER_IMPORT_MAX_LINE_BYTES", 16 * 1024**2, minimum=1024)
# The longest prompt (or chat message) and response text an import accepts, in characters.
ARBITER_IMPORT_MAX_TEXT_CHARS = env_int("ARBITER_IMPORT_MAX_TEXT_CHARS", 1_000_000, minimum=100)
# Pages render this many characters of a text as markdown; the rest is one click away, as plain text.
ARBITER_RENDER_MAX_CHARS = env_int("ARBITER_RENDER_MAX_CHARS", 50_000, minimum=1000)
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "config.parsers.SafeJSONParser",
    "rest_framework.parsers.FormParser",
    "rest_framework.parsers.MultiPartParser",
]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.common.CommonMiddleware"), "config.request_limits.RequestTooBigMiddleware")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # 4xx: one line with the reason, no traceback (config/log_filters.py). On the handler for every
    # logger (django.security.* included) and on django.request itself, so what is recorded is short too.
    "filters": {"one_line_client_errors": {"()": "config.log_filters.OneLineClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["one_line_client_errors"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["one_line_client_errors"]},
        "django.security": {"filters": ["one_line_client_errors"]},
        "axes": {"level": "WARNING"},
    },
}
