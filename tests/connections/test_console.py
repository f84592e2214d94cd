"""The connections page: what it learns from sessions without connections importing it."""

import json

import pytest
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_page_lists_the_protocols_that_open_a_session_in_the_browser():
    client = Client()
    client.force_login(make_user("operator"))
    page = client.get("/connections").content.decode()
    start = page.index('<script id="session-protocols" type="application/json">') + len(
        '<script id="session-protocols" type="application/json">'
    )
    assert json.loads(page[start : page.index("</script>", start)]) == ["ssh", "sftp", "telnet"]
