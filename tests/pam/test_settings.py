"""Settings come from the environment (CONTRACT.md): each variable selects what it names."""

import json
import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

PROBE = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "host": db.get("HOST"), "port": db.get("PORT"),
    "user": db.get("USER"), "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL, "cache": settings.CACHES["default"]["BACKEND"],
    "data_dir": str(settings.DATA_DIR), "ports": [settings.HTTP_PORT, settings.SSH_PORT],
}))
"""


def probe(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PAM_") and k != "DJANGO_SETTINGS_MODULE"}
    clean.update({"DJANGO_SETTINGS_MODULE": "pam.settings", "PAM_DATA_DIR": str(tmp_path), **env})
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode:
        return {"error": result.stderr}
    return json.loads(result.stdout)


def test_embedded_default(tmp_path):
    found = probe(tmp_path)
    assert found["engine"] == "django.db.backends.sqlite3"
    assert found["name"] == str(tmp_path / "pam.sqlite3")
    assert found["layer"] == "channels.layers.InMemoryChannelLayer"
    assert found["broker"] == "filesystem://"
    assert found["cache"].endswith("FileBasedCache")
    assert found["ports"] == [8000, 2222]
    assert (tmp_path / "secret.key").exists()


def test_postgres_url_selects_postgresql(tmp_path):
    found = probe(tmp_path, PAM_DATABASE_URL="postgres://pam:s3cret@db.internal:6543/pamdb")
    assert (found["engine"], found["name"], found["host"], found["port"], found["user"]) == (
        "django.db.backends.postgresql",
        "pamdb",
        "db.internal",
        6543,
        "pam",
    )


def test_redis_url_switches_layer_broker_and_cache_together(tmp_path):
    found = probe(tmp_path, PAM_REDIS_URL="redis://127.0.0.1:6379/3")
    assert found["layer"] == "pam.channel_layer.ResilientRedisChannelLayer"  # channels_redis, waiting out outages
    assert found["broker"] == "redis://127.0.0.1:6379/3"
    assert found["cache"] == "django.core.cache.backends.redis.RedisCache"


def test_ports_and_data_dir(tmp_path):
    found = probe(tmp_path / "elsewhere", PAM_HTTP_PORT="9000", PAM_SSH_PORT="2200")
    assert found["ports"] == [9000, 2200]
    assert found["data_dir"] == str(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PAM_DATABASE_URL": "mysql://x@y/z"}, "sqlite:// or postgres://"),
        ({"PAM_HTTP_PORT": "eighty"}, "PAM_HTTP_PORT must be an integer"),
        ({"PAM_DEBUG": "maybe"}, "PAM_DEBUG must be a boolean"),
        ({"PAM_TOKEN_FAILURE_RATE": "lots"}, "PAM_TOKEN_FAILURE_RATE must look like 20/min"),
        ({"PAM_LOGIN_FAILURE_LIMIT": "0"}, "PAM_LOGIN_FAILURE_LIMIT and PAM_LOGIN_LOCKOUT_MINUTES"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(tmp_path, env, message):
    assert message in probe(tmp_path, **env)["error"]
