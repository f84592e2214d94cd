"""Public identifiers: a type prefix and random characters (``conn_3k9w…``), never a counter."""

import secrets
import string

ALPHABET = string.ascii_lowercase + string.digits
RANDOM_LENGTH = 16
MAX_LENGTH = 32


def new_id(prefix):
    return f"{prefix}_{''.join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))}"
