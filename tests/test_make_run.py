"""`make run` on a new data directory: set-up, the first admin's password, every process up,
the console usable with that password, and Ctrl-C stopping everything."""

import http.cookiejar
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from tests.processes import ROOT, free_port, wait_for_http


def read_until(stream, pattern, deadline):
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match, seen
    raise AssertionError(f"{pattern!r} not printed; output was:\n{''.join(seen)}")

def group_gone(pgid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def sign_in(base, username, password):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(base + "/login").read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": csrf})
    opener.open(urllib.request.Request(base + "/login", data=form.encode(), headers={"Referer": base + "/login"}))
    return opener

def test_make_run_from_a_new_data_dir(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAM_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update({"PAM_DATA_DIR": str(tmp_path), "PAM_HTTP_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        match, _ = read_until(process.stdout, r"password: (\S+)", deadline)
        password = match.group(1)
        read_until(process.stdout, r"celery@\S+ ready", deadline)
        base = f"http://127.0.0.1:{port}"
        assert wait_for_http(base + "/api/health", process=process) == 200
        browser = sign_in(base, "admin", password)
        me = browser.open(base + "/api/me").read().decode()
        assert '"role":"admin"' in me
        assert browser.open(base + "/api/docs/").status == 200
        assert urllib.request.urlopen(base + "/static/vendor/swagger-ui-dist/swagger-ui-bundle.js").status == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        process.wait(timeout=30)
    assert group_gone(process.pid, timeout=30), "processes of `make run` outlived Ctrl-C"
    again = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "bootstrap_admin"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert again.returncode == 0 and "password" not in again.stdout
