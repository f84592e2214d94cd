"""Settings for PAM, read from the environment (see CONTRACT.md).

This is the only module that reads ``os.environ``. With no variables set, PAM runs on the
embedded default: SQLite, the in-memory channel layer and a filesystem Celery broker, all under
``PAM_DATA_DIR``. ``PAM_DATABASE_URL`` selects PostgreSQL; ``PAM_REDIS_URL`` switches the channel
layer, the Celery broker and result backend, and the cache to Redis together.
"""

import fnmatch
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default).strip()


def env_int(name, default):
    raw = env_str(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_bool(name, default=False):
    raw = env_str(name).lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, got {raw!r}")


def env_list(name, default=()):
    raw = env_str(name)
    if not raw:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def _resolve(path):
    path = Path(path)
    return path if path.is_absolute() else BASE_DIR / path


# What PAM writes is the service user's alone (files 0600, folders 0700) from the moment it
# exists, whichever code creates it: SQLite (the database, its -wal and -shm), kombu's file broker,
# Django's file cache, recordings, host keys, the master key. Only a process umask reaches all of
# them; every process (daphne, celery, manage.py) loads this module first.
os.umask(0o077)
DATA_DIR = _resolve(env_str("PAM_DATA_DIR", "var"))
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
if DATA_DIR.stat().st_uid == os.geteuid():
    DATA_DIR.chmod(0o700)  # a data directory made before this rule (or by hand) is closed too
RECORDINGS_DIR = DATA_DIR / "recordings"
HOST_KEYS_DIR = DATA_DIR / "host-keys"

# The master key that encrypts stored credentials (base64 of 32 bytes). Unset: pam.crypto
# generates one into MASTER_KEY_FILE on first use. KNOWN_KEYS_DIR keeps older keys readable.
MASTER_KEY = env_str("PAM_MASTER_KEY")
MASTER_KEY_FILE = DATA_DIR / "master.key"
KNOWN_KEYS_DIR = DATA_DIR / "keys"


def _secret_key():
    """Return the Django signing key: from the environment, else generated once into DATA_DIR."""
    configured = env_str("PAM_SECRET_KEY")
    if configured:
        return configured
    path = DATA_DIR / "secret.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("PAM_DEBUG", False)
ALLOWED_HOSTS = env_list("PAM_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("PAM_CSRF_TRUSTED_ORIGINS")
# Peers whose X-Forwarded-For is believed when recording a client address (audit trail).
TRUSTED_PROXIES = env_list("PAM_TRUSTED_PROXIES")

HTTP_PORT = env_int("PAM_HTTP_PORT", 8000)
SSH_PORT = env_int("PAM_SSH_PORT", 2222)
SITE_TITLE = env_str("PAM_SITE_TITLE", "PAM")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
    "axes",
    "accounts",
    "nodes",
    "targets",
    "connections",
    "sessions.apps.SessionsConfig",
    "recordings",
    "sshserver",
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
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx: console pages answer htmx with a fragment
    "axes.middleware.AxesMiddleware",  # turns a login lockout into its 429 page (last, per axes)
]

ROOT_URLCONF = "pam.urls"
ASGI_APPLICATION = "pam.asgi.application"

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
                "accounts.context_processors.console",
                "sessions.context_processors.session_protocols",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

DATABASE_URL = env_str("PAM_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'pam.sqlite3'}"


def _database(url):
    config = dj_database_url.parse(url)
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        config["NAME"] = str(_resolve(config["NAME"]))
        # Several processes (web, worker, SSH listener) share the file: WAL lets readers run
        # beside the writer, IMMEDIATE takes the write lock up front instead of failing mid-way.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
        config["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    elif engine == "django.db.backends.postgresql":
        config["CONN_HEALTH_CHECKS"] = True
    else:
        raise ImproperlyConfigured("PAM_DATABASE_URL must be a sqlite:// or postgres:// URL")
    return config


DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis or the embedded default: channel layer, Celery, cache ----------------------------

REDIS_URL = env_str("PAM_REDIS_URL")
# Messages one channel holds before a send fails (Channels' default, 100, was filled by 200
# terminates at once): a node's channel serves all its sessions, a consumer's a remote session.
CHANNEL_CAPACITY = {"pam-node.*": 10_000, "specific.*": 10_000}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "pam.channel_layer.ResilientRedisChannelLayer",
            # redis-py times reads out after 5 s by default, as long as channels_redis blocks
            # waiting for a message: an idle channel would then fail instead of waiting again.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "prefix": "pam",
                       "channel_capacity": CHANNEL_CAPACITY},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pam",
        },
        # Counters against hammering (login lockouts, failed tokens, audit summaries), shared by
        # every node; INCR is atomic on Redis.
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pam-throttle",
        },
    }
else:
    # Channels 4.3 compiles the capacity patterns for Redis only; this layer takes them compiled.
    _capacities = [(re.compile(fnmatch.translate(name)), size) for name, size in CHANNEL_CAPACITY.items()]
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"channel_capacity": _capacities}}
    }
    # Kombu's filesystem transport: a queue of files under DATA_DIR, shared by every process on
    # this machine without any server to install.
    CELERY_BROKER_URL = "filesystem://"
    _broker_dir = DATA_DIR / "celery" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(DATA_DIR / "celery" / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{DATA_DIR / 'celery' / 'results'}"
    for _folder in (_broker_dir, DATA_DIR / "celery" / "control", DATA_DIR / "celery" / "results"):
        _folder.mkdir(parents=True, exist_ok=True)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        },
        # Files, like the broker: every process of the one machine (web, worker, SSH listener)
        # counts the same login and token failures, with no server to install.
        "throttle": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "throttle"),
        },
    }
    # axes.W001 warns that a file cache's increment is not atomic: racing failures may be counted
    # once, so a lockout may come a few attempts late; the counts are still shared by every
    # process of the embedded default. Scale-out uses Redis, whose INCR is atomic.
    SILENCED_SYSTEM_CHECKS = ["axes.W001"]

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celery" / "beat-schedule")
# Beat writes its schedule there whichever broker is used (with Redis, nothing else makes it).
(DATA_DIR / "celery").mkdir(parents=True, exist_ok=True)

# --- Identity -------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
SESSION_ENGINE = "accounts.session_store"
SESSION_COOKIE_AGE = env_int("PAM_SESSION_AGE", 12 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("PAM_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "console:login"
CSRF_FAILURE_VIEW = "pam.rest.errors.csrf_failure"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Single sign-on (authorization code flow with PKCE, state and nonce), enabled by its issuer.
# The provider's endpoints come from its discovery document (accounts.oidc); the OIDC_* names
# below are mozilla-django-oidc's.
OIDC_ISSUER = env_str("PAM_OIDC_ISSUER").rstrip("/")
OIDC_RP_CLIENT_ID = env_str("PAM_OIDC_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("PAM_OIDC_CLIENT_SECRET")
OIDC_ENABLED = bool(OIDC_ISSUER and OIDC_RP_CLIENT_ID)
OIDC_RP_SCOPES = env_str("PAM_OIDC_SCOPES", "openid email profile groups")
OIDC_RP_SIGN_ALGO = env_str("PAM_OIDC_SIGN_ALGO", "RS256")
OIDC_GROUPS_CLAIM = env_str("PAM_OIDC_GROUPS_CLAIM", "groups")
OIDC_NAME_CLAIM = env_str("PAM_OIDC_NAME_CLAIM", "name")
OIDC_USERNAME_CLAIM = env_str("PAM_OIDC_USERNAME_CLAIM", "preferred_username")
# Role of a user whose groups map to no role; "none" refuses such users.
OIDC_DEFAULT_ROLE = env_str("PAM_OIDC_DEFAULT_ROLE", "viewer")
# Link a first sign-on to the existing account with the same email, only when the provider says
# email_verified; off: single sign-on never takes over a local account.
OIDC_LINK_BY_EMAIL = env_bool("PAM_OIDC_LINK_BY_EMAIL", True)
OIDC_VERIFY_SSL = env_bool("PAM_OIDC_VERIFY_TLS", True)
OIDC_TIMEOUT = env_int("PAM_OIDC_TIMEOUT", 10)
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_STORE_ID_TOKEN = True  # the id_token_hint of the provider's end-session request
OIDC_CALLBACK_CLASS = "accounts.oidc.CallbackView"
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc:callback"
OIDC_OP_LOGOUT_URL_METHOD = "accounts.oidc.provider_logout_url"
ALLOW_LOGOUT_GET_METHOD = True  # session-broker: GET /auth/logout
LOGIN_REDIRECT_URL_FAILURE = "/login?sso=failed"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: a locked-out client is refused before any check
    "django.contrib.auth.backends.ModelBackend",
    "accounts.oidc.Backend",
]

# API keys and user tokens: how often last_used_at may be written for one token (seconds).
TOKEN_LAST_USED_RESOLUTION = 60
# Every API key and personal token expires within this many days (the default expiry, too).
TOKEN_MAX_LIFETIME_DAYS = env_int("PAM_TOKEN_MAX_LIFETIME_DAYS", 90)
if TOKEN_MAX_LIFETIME_DAYS < 1:
    raise ImproperlyConfigured("PAM_TOKEN_MAX_LIFETIME_DAYS must be at least 1.")

# Brute force (accounts.throttling). Password logins (console, Django admin) are counted per
# account and per client address by django-axes in the "throttle" cache; at the limit the
# account or address is locked out for LOGIN_LOCKOUT, doubling with every further LIMIT failures
# (up to LOGIN_LOCKOUT_MAX); a failure while locked out restarts the lockout.
LOGIN_FAILURE_LIMIT = env_int("PAM_LOGIN_FAILURE_LIMIT", 5)
LOGIN_LOCKOUT = timedelta(minutes=env_int("PAM_LOGIN_LOCKOUT_MINUTES", 15))
LOGIN_LOCKOUT_MAX = timedelta(hours=24)
if LOGIN_FAILURE_LIMIT < 1 or LOGIN_LOCKOUT <= timedelta(0):
    raise ImproperlyConfigured("PAM_LOGIN_FAILURE_LIMIT and PAM_LOGIN_LOCKOUT_MINUTES must be at least 1")
# Refused API keys and personal tokens per client address ("N/s", "N/min", "N/hour"): past it,
# token authentication from that address answers 429 until the oldest failure leaves the window.
TOKEN_FAILURE_RATE = env_str("PAM_TOKEN_FAILURE_RATE", "20/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)", TOKEN_FAILURE_RATE):
    raise ImproperlyConfigured("PAM_TOKEN_FAILURE_RATE must look like 20/min (per s, min, hour or day)")
# Repeated identical failures (same action, client, account or token name) within this many
# seconds are one audit row whose ``repeats`` counts them.
AUDIT_REPEAT_WINDOW = env_int("PAM_AUDIT_REPEAT_WINDOW", 600)

AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CACHE = "throttle"
AXES_FAILURE_LIMIT = "accounts.throttling.failure_limit"
AXES_COOLOFF_TIME = "accounts.throttling.login_lockout"
AXES_LOCKOUT_PARAMETERS = "accounts.throttling.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "accounts.authentication.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
AXES_ENABLE_ADMIN = False  # the cache handler keeps no rows to show
AXES_VERBOSE = False  # no start-up banner in every command's output; lockouts are still logged

# --- Targets ----------------------------------------------------------------------------------

# Addresses PAM never connects to for health checks, jump hosts, sessions and web URLs: CIDR
# networks, optionally with a port ("10.0.0.0/8", "192.0.2.7:25", "[2001:db8::1]:22"). The
# database and Redis of the installation itself are always added, on every address of this
# machine when they run on it (see targets.addresses).
DEFAULT_TARGET_DENYLIST = [
    "169.254.0.0/16",  # IPv4 link-local: cloud metadata (AWS, GCP, Azure, OpenStack), ECS task
    # metadata 169.254.170.2, AWS DNS and time 169.254.169.253/.123
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "fd00:ec2::23/128",  # AWS time sync over IPv6
    "168.63.129.16/32",  # Azure WireServer (VM agent, DNS, health probes)
    "100.100.100.200/32",  # Alibaba Cloud metadata
]
TARGET_DENYLIST = env_list("PAM_TARGET_DENYLIST", DEFAULT_TARGET_DENYLIST)
HEALTH_CHECK_TIMEOUT = env_int("PAM_HEALTH_CHECK_TIMEOUT_MS", 3000) / 1000
HEALTH_CHECK_CONCURRENCY = env_int("PAM_HEALTH_CHECK_CONCURRENCY", 256)
HEALTH_CHECK_INTERVAL = env_int("PAM_HEALTH_CHECK_INTERVAL", 300)
HEALTH_CHECK_MAX_TARGETS = 5000

# connection-manager POST /api/connections/import: a file with more connections is refused whole.
IMPORT_MAX_CONNECTIONS = env_int("PAM_IMPORT_MAX_CONNECTIONS", 10_000)

# Connection tunnels (connections.tunnels): local ports a worker opens on its 127.0.0.1 and
# forwards through a connection's SSH link. A tunnel's localPort must lie in this range.
TUNNEL_PORT_MIN = env_int("PAM_TUNNEL_PORT_MIN", 40000)
TUNNEL_PORT_MAX = env_int("PAM_TUNNEL_PORT_MAX", 40999)
if not 1 <= TUNNEL_PORT_MIN <= TUNNEL_PORT_MAX <= 65535:
    raise ImproperlyConfigured("PAM_TUNNEL_PORT_MIN and PAM_TUNNEL_PORT_MAX must be 1 <= min <= max <= 65535")
# The Celery queue of the tunnel tasks: the ports open on the machine of the worker consuming
# it (`celery -A pam worker -Q pam-tunnels` there). Unset: Celery's default queue.
TUNNEL_QUEUE = env_str("PAM_TUNNEL_QUEUE")
TUNNEL_RETRY_MAX = 60  # seconds: the longest wait between two attempts to restore a dropped link

# The beat schedule of `celery -A pam worker -B`; tasks are safe to run twice.
CELERY_BEAT_SCHEDULE = {
    "purge-expired-logins": {
        "task": "accounts.tasks.purge_expired_logins",
        "schedule": 3600.0,
    },
    "check-connection-health": {
        "task": "connections.tasks.check_connection_health",
        "schedule": float(HEALTH_CHECK_INTERVAL),
    },
    "reap-lost-sessions": {
        "task": "sessions.tasks.reap_lost_sessions",
        "schedule": 30.0,
    },
    "reap-lost-tunnels": {
        "task": "connections.tasks.reap_lost_tunnels",
        "schedule": 30.0,
    },
    "sweep-unindexed-recordings": {
        "task": "recordings.tasks.sweep_unindexed_recordings",
        "schedule": 300.0,
    },
    "delete-expired-recordings": {
        "task": "recordings.tasks.delete_expired_recordings",
        "schedule": 3600.0,
    },
}

# --- Recordings -----------------------------------------------------------------------------

# Days recordings, their index and trails are kept after a session ends (0: for good); a
# connection's recording_retention_days overrides it for its sessions.
RECORDING_RETENTION_DAYS = env_int("PAM_RECORDING_RETENTION_DAYS", 0)
# The Celery queue recordings are indexed on (`celery -A pam worker -Q …`). Unset: the default queue.
RECORDING_INDEX_QUEUE = env_str("PAM_RECORDING_INDEX_QUEUE")
# An indexing this old is taken for dead (its worker stopped) and started again by the sweep.
RECORDING_INDEX_STALE_AFTER = 3600
# Seconds a download id (audited-connections' two-step downloads) stays usable, once.
TRAIL_DOWNLOAD_TTL = 60

# --- Nodes (nodes.services: web nodes, tunnel workers, SSH listeners) -------------------------

NODE_HEARTBEAT = 5  # seconds between a node's heartbeats
# A node silent this long is dead: its sessions end as lost, its tunnels reopen on another worker.
NODE_STALE_AFTER = 30

# --- Sessions ---------------------------------------------------------------------------------

SESSION_SWEEP = 2  # seconds between a node's looks for sessions ended by a notice it missed
# Seconds a session may wait for its owner's terminal before it expires unopened.
SESSION_PENDING_TTL = env_int("PAM_SESSION_PENDING_TTL", 300)
SESSION_RECONNECT_GRACE = env_int("PAM_SESSION_RECONNECT_GRACE", 60)  # seconds the owner may be away
SESSION_SCROLLBACK_BYTES = 64 * 1024  # recent output replayed to a (re)attaching browser
SESSION_HIGH_WATER = 4 * 1024 * 1024  # bytes sent but not drawn by the owner before reading pauses
SESSION_LOW_WATER = 1024 * 1024
# Whoever is further behind is let go (a watcher is told; an owner's page reconnects). Owners
# pause the target at SESSION_HIGH_WATER, which with one read burst (1 MiB) stays well below.
SESSION_VIEWER_MAX_BEHIND = 16 * 1024 * 1024
# The largest file one drive transfer (download or upload, sessions.drive) may move.
DRIVE_MAX_BYTES = env_int("PAM_DRIVE_MAX_BYTES", 100 * 1024 * 1024)
# Origins whose links to GET /api/connect open a session without a confirmation page (NetBox).
CONNECT_TRUSTED_ORIGINS = env_list("PAM_CONNECT_TRUSTED_ORIGINS")

# --- API ------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasRequiredPerms"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["pam.rest.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "pam.rest.errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PAM API",
    "DESCRIPTION": (
        "Privileged access management: connections, sessions, recordings, users and tokens. "
        "Authenticate with `Authorization: Bearer <token>`, `Authorization: Token <token>`, "
        "`X-API-Key: <token>` or the browser session. A token is an API key (`name:secret`) or "
        "a personal user token (`pamu_…`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui-dist",
    "SWAGGER_UI_FAVICON_HREF": "/static/console/favicon.svg",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/(api|connection-manager/api/v1)",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "pam.rest.schema.document_errors"],
    "ENUM_NAME_OVERRIDES": {
        "ProtocolEnum": "connections.choices.Protocol",
        "TunnelStateEnum": "connections.choices.TunnelState",
    },
}

# --- Static files, i18n, logging ------------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Request bodies above this are refused with a JSON 400 before any view parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("PAM_MAX_REQUEST_BYTES", 20 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("PAM_LOG_LEVEL", "INFO")},
    # A database or Redis outage fails every request alike: one traceback, then a count a minute.
    "filters": {"outages": {"()": "pam.outages.SummariseOutages"}},
    "loggers": {"django.request": {"level": "ERROR", "filters": ["outages"]}},
}
