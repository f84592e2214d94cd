import pytest

from connections import tunnels
from pam.celery import app as celery_app
from targets.addresses import deny_rules


@pytest.fixture(autouse=True)
def _fresh_deny_rules():
    """The deny list is cached per process; tests that change settings need it rebuilt."""
    deny_rules.cache_clear()
    yield
    deny_rules.cache_clear()


@pytest.fixture
def in_process():
    """Run tunnel tasks eagerly: the tunnel manager lives in this test process."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before
    tunnels.shutdown(release=False)
