"""Settings for the test suite: the product's settings plus a test-only app."""

import os
from pathlib import Path

# Tests keep their keys, recordings and SQLite files apart from a developer's var/.
os.environ.setdefault("PAM_DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

from pam.settings import *  # noqa: E402,F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
# Hashing cost is not under test; MD5 keeps user creation fast.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
