"""The data directory and the SQLite database are the service user's alone."""

import os
import stat
import subprocess
import sys

from tests.processes import ROOT

# What a fresh installation writes on its first start and first session: the database (with its
# WAL), the signing and master keys, a recording, the cache and the file broker's folders.
FIRST_START = """
import django
django.setup()
from django.core.cache import cache
from django.core.management import call_command
from django.conf import settings
from django.utils import timezone
from pam.crypto import keyring
from recordings.writer import AsciicastWriter

call_command("migrate", verbosity=0)
keyring()
writer = AsciicastWriter(settings.RECORDINGS_DIR / "first.cast", width=80, height=24, title="t",
                         started_at=timezone.now())
writer.flush()
cache.set("probe", 1)
"""


def test_first_start_leaves_nothing_readable_by_group_or_others(tmp_path):
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAM_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DJANGO_SETTINGS_MODULE": "pam.settings", "PAM_DATA_DIR": str(data_dir)})
    # The operator's shell is permissive; the product must not rely on it.
    result = subprocess.run(
        [sys.executable, "-c", FIRST_START],
        cwd=ROOT,
        env=env,
        umask=0o022,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    created = [data_dir, *data_dir.rglob("*")]
    names = {path.name for path in created}
    assert {"pam.sqlite3", "master.key", "secret.key", "first.cast", "recordings"} <= names
    open_to_others = {
        str(path.relative_to(tmp_path)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in created
        if path.stat().st_mode & 0o077
    }
    assert open_to_others == {}


def test_an_existing_data_dir_is_closed_at_start(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAM_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DJANGO_SETTINGS_MODULE": "pam.settings", "PAM_DATA_DIR": str(data_dir)})
    start = [sys.executable, "-c", "import django; django.setup()"]
    subprocess.run(start, cwd=ROOT, env=env, check=True, timeout=60)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
