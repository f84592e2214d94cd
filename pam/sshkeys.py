"""Loading SSH private keys given as text (OpenSSH or PEM), for validation and for connecting.

Loading an RSA key checks it (primality of its factors), which grows steeply with its size:
a 12,288-bit key took 15 s, and four at once froze the server. So before any parse, the text
is bounded and the key's integers are measured from its structure (the openssh-key-v1 format
of OpenSSH's PROTOCOL.key, or the DER of RFC 8017 / RFC 5915 inside PEM): no integer above
MAX_RSA_BITS reaches the loader.
"""

import base64
import binascii
import io
import re

import paramiko

KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)
MAX_RSA_BITS = 4096
# A 4096-bit RSA key in OpenSSH format is about 3,400 characters; the API fields take 16,384.
MAX_KEY_TEXT = 16384
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
OPENSSH_MAGIC = b"openssh-key-v1\0"
DER_INTEGER, DER_OCTET_STRING, DER_SEQUENCE = 0x02, 0x04, 0x30
TOO_LARGE = f"The key is too large: PAM accepts RSA keys of at most {MAX_RSA_BITS} bits."
DAMAGED = "The private key could not be read (unsupported type or damaged)."


class InvalidKey(ValueError):
    """The text is not a private key PAM can use; the message says why."""


def load_private_key(text):
    """Return the paramiko key in ``text``; refuse passphrase-protected, unknown or oversized keys."""
    if not isinstance(text, str) or "PRIVATE KEY-----" not in text:
        raise InvalidKey("Not a private key: expected an OpenSSH or PEM block.")
    check_key_size(text)
    for key_class in KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text))
        except paramiko.PasswordRequiredException:
            raise InvalidKey("Passphrase-protected keys are not supported; store the key without one.") from None
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            continue
    raise InvalidKey(DAMAGED)


def check_key_size(text):
    """Refuse, without loading it, a key text or any integer of a key larger than PAM accepts."""
    if len(text) > MAX_KEY_TEXT:
        raise InvalidKey(f"The key text is too long (at most {MAX_KEY_TEXT} characters). {TOO_LARGE}")
    blocks = PEM_BLOCK.findall(text)
    if not blocks:
        raise InvalidKey(DAMAGED)
    for label, body in blocks:
        if "Proc-Type:" in body:
            continue  # legacy encrypted PEM: refused as passphrase-protected before it is decrypted
        try:
            data = base64.b64decode("".join(body.split()))
            integers = _openssh_integers(data) if label == "OPENSSH PRIVATE KEY" else _der_integers(data)
        except (binascii.Error, IndexError, ValueError):
            raise InvalidKey(DAMAGED) from None
        if any(int.from_bytes(value, "big").bit_length() > MAX_RSA_BITS for value in integers):
            raise InvalidKey(TOO_LARGE)


class _Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, size):
        if size < 0 or self.at + size > len(self.data):
            raise IndexError("truncated")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def uint32(self):
        return int.from_bytes(self.take(4), "big")

    def string(self):
        return self.take(self.uint32())


def _openssh_integers(data):
    """The integers paramiko would load from an unencrypted openssh-key-v1 blob.

    paramiko's RSA loader reads six mpints after the key type whatever the type says, so the
    first six fields are measured whenever there are six (a real Ed25519 or ECDSA key has
    fewer before its padding, and then no RSA load can succeed either).
    """
    reader = _Reader(data)
    if reader.take(len(OPENSSH_MAGIC)) != OPENSSH_MAGIC:
        raise ValueError("not openssh-key-v1")
    cipher = reader.string()
    reader.string()  # kdf name
    reader.string()  # kdf options
    reader.take(4)  # number of keys
    reader.string()  # public key
    if cipher != b"none":
        return []  # encrypted: refused as passphrase-protected before anything is decrypted
    private = _Reader(reader.string())
    private.take(8)  # two check integers
    private.string()  # key type
    fields = []
    try:
        while len(fields) < 6:
            fields.append(private.string())
    except IndexError:
        return []
    return fields


def _der_integers(data, depth=0):
    """Every INTEGER in a DER document, looking inside SEQUENCEs, context tags and OCTET STRINGs."""
    integers = []
    reader = _Reader(data)
    while reader.at < len(data):
        tag = reader.take(1)[0]
        value = reader.take(_der_length(reader))
        if tag == DER_INTEGER:
            integers.append(value)
        elif depth < 8 and (tag == DER_SEQUENCE or tag & 0xE0 == 0xA0):
            integers += _der_integers(value, depth + 1)
        elif depth < 8 and tag == DER_OCTET_STRING and value[:1] == bytes([DER_SEQUENCE]):
            # PKCS#8 wraps the RSA key in an OCTET STRING; an EC private key is only bytes.
            try:
                integers += _der_integers(value, depth + 1)
            except (IndexError, ValueError):
                pass
    return integers


def _der_length(reader):
    first = reader.take(1)[0]
    if first < 0x80:
        return first
    size = first & 0x7F
    if not 1 <= size <= 4:
        raise ValueError("unsupported DER length")
    return int.from_bytes(reader.take(size), "big")
