"""Encryption of stored secrets with the master key (AES-256-GCM).

A ciphertext reads ``pam1:<key id>:<base64(nonce + sealed)>``. The key id names the key that
sealed it, so ``rotate_master_key`` can re-encrypt rows one key at a time while every process
still reads both. Each value is bound to its field (``app.Model.field``) as associated data, so a
ciphertext copied into another field does not decrypt.

Keys: the current key comes from ``PAM_MASTER_KEY`` or, when unset, from ``master.key`` in the
data directory (generated on first use). Every key that may still seal a row lives in the
``keys/`` folder beside it, named by its id; env-supplied keys are never written to disk.
"""

import base64
import binascii
import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "pam1"
NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(Exception):
    """A stored secret could not be opened: unknown key id, wrong field, or tampered data."""


def key_id(key):
    return hashlib.sha256(key).hexdigest()[:16]


def decode_key(text, source):
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ImproperlyConfigured(f"{source} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def encode_key(key):
    return base64.b64encode(key).decode()


def generate_key():
    return secrets.token_bytes(KEY_BYTES)


def write_key_file(path, key):
    """Write a key readable by its owner only, replacing any file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(encode_key(key) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def known_keys_dir():
    return Path(settings.KNOWN_KEYS_DIR)


@dataclass(frozen=True)
class Keyring:
    current_id: str
    keys: dict

    @property
    def current(self):
        return self.keys[self.current_id]


def load_master_key():
    """Return the keyring: the current master key plus every known older key."""
    if settings.MASTER_KEY:
        current = decode_key(settings.MASTER_KEY, "PAM_MASTER_KEY")
    else:
        path = Path(settings.MASTER_KEY_FILE)
        if not path.exists():
            _create_key_file(path)
        current = decode_key(path.read_text(), str(path))
    keys = {}
    folder = known_keys_dir()
    if folder.is_dir():
        for item in sorted(folder.glob("*.key")):
            key = decode_key(item.read_text(), str(item))
            keys[key_id(key)] = key
    keys[key_id(current)] = current
    return Keyring(current_id=key_id(current), keys=keys)


def _create_key_file(path):
    """Generate the first master key; the first of several racing processes wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(encode_key(key) + "\n")


_lock = threading.Lock()
_keyring = None


def keyring(reload=False):
    global _keyring
    with _lock:
        if _keyring is None or reload:
            _keyring = load_master_key()
        return _keyring


def encrypt(plaintext, context, ring=None):
    """Seal ``plaintext`` (str) for the field named by ``context`` with the current key."""
    ring = ring or keyring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(ring.current).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{PREFIX}:{ring.current_id}:{base64.b64encode(nonce + sealed).decode()}"


def ciphertext_key_id(value):
    parts = value.split(":", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise DecryptionError("not a PAM ciphertext")
    return parts[1]


def decrypt(value, context):
    """Open a value sealed by ``encrypt`` for the same field."""
    kid = ciphertext_key_id(value)
    ring = keyring()
    if kid not in ring.keys:
        # Another process may have rotated the key since this one loaded the ring.
        ring = keyring(reload=True)
    key = ring.keys.get(kid)
    if key is None:
        raise DecryptionError(f"no master key with id {kid} is available")
    try:
        raw = base64.b64decode(value.split(":", 2)[2], validate=True)
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
    except (binascii.Error, ValueError, InvalidTag):
        raise DecryptionError("stored secret failed authentication") from None


def activate(ring):
    """Make ``ring`` this process's keyring (used while rotating the master key)."""
    global _keyring
    with _lock:
        _keyring = ring
