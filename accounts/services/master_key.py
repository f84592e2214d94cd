"""Rotation of the master key that encrypts every stored secret.

Every EncryptedTextField of every model is re-encrypted in one transaction, each value sealed
again for its own row. In file mode the
old and new keys are both written to the known-keys folder *before* any row changes, so a crash
at any point leaves every value readable; ``master.key`` is switched only after the commit.
With ``PAM_MASTER_KEY`` set, keys never touch the disk: the operator supplies the new key and
restarts every process with it.
"""

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from pam import crypto
from pam.exceptions import InvalidInput
from pam.fields import EncryptedTextField

BATCH = 500


def encrypted_fields():
    """Yield ``(model, [field names])`` for every model that stores encrypted secrets."""
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            yield model, names


def key_ids_in_use():
    """Return the ids of every key that seals at least one stored value."""
    used = set()
    with connection.cursor() as cursor:
        for model, names in encrypted_fields():
            table = connection.ops.quote_name(model._meta.db_table)
            for name in names:
                column = connection.ops.quote_name(model._meta.get_field(name).column)
                cursor.execute(f"SELECT {column} FROM {table} WHERE {column} <> ''")  # noqa: S608
                used.update(crypto.ciphertext_key_id(value) for (value,) in cursor.fetchall())
    return used


def rotate_master_key(*, new_key=None, ip=None):
    """Re-encrypt every stored secret with ``new_key`` (generated when None); return a summary."""
    env_mode = bool(settings.MASTER_KEY)
    if env_mode and new_key is None:
        raise InvalidInput("PAM_MASTER_KEY is set: supply the new key to rotate to.")
    old = crypto.keyring(reload=True)
    new_key = new_key or crypto.generate_key()
    new_id = crypto.key_id(new_key)
    if new_id == old.current_id:
        raise InvalidInput("The new key is the current key.")
    if not env_mode:
        known = crypto.known_keys_dir()
        crypto.write_key_file(known / f"{old.current_id}.key", old.current)
        crypto.write_key_file(known / f"{new_id}.key", new_key)
    crypto.activate(crypto.Keyring(current_id=new_id, keys={**old.keys, new_id: new_key}))
    try:
        with transaction.atomic():
            count = 0
            for model, names in encrypted_fields():
                fields = {name: model._meta.get_field(name) for name in names}
                rows = model._base_manager.only("pk", *names)
                pks = list(rows.values_list("pk", flat=True))
                for start in range(0, len(pks), BATCH):
                    for row in rows.filter(pk__in=pks[start : start + BATCH]):
                        plain = {name: getattr(row, name) for name in names}
                        values = {name: fields[name].seal(value, row.pk) for name, value in plain.items() if value}
                        if values:
                            rows.filter(pk=row.pk).update(**values)
                            count += len(values)
            record_event(
                action=AuditAction.MASTER_KEY_ROTATED,
                object_type="master_key",
                object_name=new_id,
                ip=ip,
                details=f"from {old.current_id}; {count} value(s) re-encrypted",
            )
    except BaseException:
        crypto.activate(old)
        raise
    if not env_mode:
        crypto.write_key_file(settings.MASTER_KEY_FILE, new_key)
    return {"old_key_id": old.current_id, "new_key_id": new_id, "values": count}


def purge_unused_keys():
    """Delete known keys that seal no stored value and are not current; return their ids."""
    current = crypto.keyring(reload=True).current_id
    used = key_ids_in_use() | {current}
    removed = []
    for path in sorted(Path(crypto.known_keys_dir()).glob("*.key")):
        if path.stem not in used:
            path.unlink()
            removed.append(path.stem)
    return removed
