import pytest

from targets.addresses import deny_rules


@pytest.fixture(autouse=True)
def _fresh_deny_rules():
    """The deny list is cached per process; tests that change settings need it rebuilt."""
    deny_rules.cache_clear()
    yield
    deny_rules.cache_clear()
