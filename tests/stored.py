"""Where a secret could rest once a test is over: the data directory and the database."""

from django.conf import settings
from django.db import connection


def places_holding(secret, since):
    """Every file under PAM_DATA_DIR written since ``since`` (a time.time(); recordings, keys,
    caches, the SQLite file) and every column of every table whose content holds ``secret``.

    Files of earlier test runs are left out: the target account's password lasts across runs.
    """
    needle = secret.encode()
    found = [
        str(p) for p in settings.DATA_DIR.rglob("*")
        if p.is_file() and p.stat().st_mtime >= since - 1 and needle in p.read_bytes()
    ]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row):
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    text = value if isinstance(value, bytes) else str(value).encode()
                    if needle in text:
                        found.append(f"{table}.{column}")
    return found
