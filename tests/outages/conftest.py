"""A running installation of the outage tests' own: PostgreSQL and Redis started for each test
module (tests.faults, free loopback ports), stopped and started by its tests, and one daphne
node per test.
"""

from contextlib import ExitStack

import pytest

from tests.faults import Installation, PrivatePostgres, PrivateRedis
from tests.outages.probes import GRACE


@pytest.fixture(scope="module")
def servers():
    with ExitStack() as stack:
        postgres = PrivatePostgres()
        stack.callback(postgres.remove)
        redis = PrivateRedis()
        stack.callback(redis.remove)
        postgres.start()
        redis.start()
        yield postgres, redis


@pytest.fixture(scope="module")
def installation(servers, tmp_path_factory):
    postgres, redis = servers
    pam = Installation(postgres, redis, tmp_path_factory.mktemp("pam-faults"),
                       PAM_SESSION_RECONNECT_GRACE=GRACE)
    pam.people = pam.users("poweruser", "admin")
    return pam


@pytest.fixture
def pam(installation):
    """The installation with both servers up, before the test and after it (failed or not)."""
    for server in (installation.postgres, installation.redis):
        if not server.running:
            server.start()
    yield installation
    for server in (installation.postgres, installation.redis):
        if not server.running:
            server.start()


@pytest.fixture
def node(pam, tmp_path):
    with pam.daphne(tmp_path / "daphne.log") as process:
        yield process
