"""Stored credentials never reach the database in plaintext, read back from the file itself."""

import pytest
from django.db import connection as db

from tests.factories import make_address_book_folder

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "plaintext-canary-7f3a91"
HOP_PASSWORD = "hop-canary-c04e11"


def database_bytes():
    """Everything the database holds: the SQLite file and its WAL, or every row on PostgreSQL."""
    if db.vendor == "sqlite":
        path = db.settings_dict["NAME"]
        data = b""
        for suffix in ("", "-wal", "-journal"):
            try:
                with open(path + suffix, "rb") as fh:
                    data += fh.read()
            except FileNotFoundError:
                pass
        return data
    with db.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [row[0] for row in cursor.fetchall()]
        dump = []
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')
            dump.append(repr(cursor.fetchall()))
    return "".join(dump).encode()


def test_credentials_are_not_in_the_database_in_plaintext(client_as, ssh_key):
    client = client_as("admin")
    client.post(
        "/api/connections",
        {"name": "canary", "protocol": "ssh", "host": "10.0.0.1", "password": PASSWORD, "privateKey": ssh_key,
         "jumpHosts": [{"host": "10.0.0.2", "username": "j", "password": HOP_PASSWORD}]},
        format="json",
    )
    folder = make_address_book_folder("prod")
    client.post(
        f"/api/addressbook/folders/shared/{folder.name}/entries",
        {"name": "entry", "type": "ssh", "hostname": "10.0.0.3", "password": PASSWORD + "-entry"},
        format="json",
    )
    data = database_bytes()
    assert b"canary" in data  # the connection's name is there: the dump is real
    for secret in (PASSWORD, HOP_PASSWORD, ssh_key.splitlines()[1]):
        assert secret.encode() not in data
