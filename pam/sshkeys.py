"""Loading SSH private keys given as text (OpenSSH or PEM), for validation and for connecting."""

import io

import paramiko

KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


class InvalidKey(ValueError):
    """The text is not a private key PAM can use; the message says why."""


def load_private_key(text):
    """Return the paramiko key in ``text``; refuse passphrase-protected or unknown keys."""
    if not isinstance(text, str) or "PRIVATE KEY-----" not in text:
        raise InvalidKey("Not a private key: expected an OpenSSH or PEM block.")
    for key_class in KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text))
        except paramiko.PasswordRequiredException:
            raise InvalidKey("Passphrase-protected keys are not supported; store the key without one.") from None
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            continue
    raise InvalidKey("The private key could not be read (unsupported type or damaged).")
