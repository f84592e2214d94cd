from io import StringIO

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="session")
def schema(django_db_setup, django_db_blocker):
    """The OpenAPI document, generated with warnings treated as errors."""
    with django_db_blocker.unblock():
        out = StringIO()
        call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def assert_in_schema(schema, method, path):
    assert path in schema["paths"], f"{path} is not in the schema"
    assert method in schema["paths"][path], f"{method.upper()} {path} is not in the schema"
