import base64
import stat
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from accounts.choices import AuditAction
from accounts.models import AuditEvent
from pam import crypto
from pam.fields import UnreadableSecret, bind_to_rows, is_set
from tests.testapp.models import Vault


@pytest.fixture
def keys(tmp_path, settings):
    """Give the test its own master key file and known-keys folder."""
    settings.MASTER_KEY = ""
    settings.MASTER_KEY_FILE = tmp_path / "master.key"
    settings.KNOWN_KEYS_DIR = tmp_path / "keys"
    crypto.keyring(reload=True)
    yield tmp_path
    crypto.activate(None)


def raw_column(column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM testapp_vault ORDER BY label")
        return [row[0] for row in cursor.fetchall()]


def test_master_key_is_generated_owner_only(keys):
    path = keys / "master.key"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_text())) == 32


def test_round_trip_and_fresh_nonce(keys):
    first = crypto.encrypt("root-password", "a.B.c")
    second = crypto.encrypt("root-password", "a.B.c")
    assert first != second and "root-password" not in first
    assert crypto.decrypt(first, "a.B.c") == "root-password"


def test_ciphertext_is_bound_to_its_field(keys):
    sealed = crypto.encrypt("secret", "app.Model.password")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(sealed, "app.Model.private_key")


def test_tampering_is_detected(keys):
    sealed = crypto.encrypt("secret", "ctx")
    prefix, kid, body = sealed.split(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(f"{prefix}:{kid}:{base64.b64encode(bytes(raw)).decode()}", "ctx")


def test_unknown_key_id_is_refused(keys):
    sealed = crypto.encrypt("secret", "ctx")
    with pytest.raises(crypto.DecryptionError, match="no master key"):
        crypto.decrypt(sealed.replace(sealed.split(":")[1], "0" * 16), "ctx")


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_bad_env_master_key_is_a_configuration_error(keys, settings, value):
    settings.MASTER_KEY = value
    with pytest.raises(ImproperlyConfigured):
        crypto.load_master_key()


@pytest.mark.django_db
def test_field_stores_ciphertext_and_reads_plaintext(keys):
    Vault.objects.create(label="a", secret="hunter2", other_secret="")
    stored = raw_column("secret")[0]
    assert stored.startswith("pam1:") and "hunter2" not in stored
    assert raw_column("other_secret") == [""]
    assert Vault.objects.get().secret == "hunter2"


@pytest.mark.django_db
def test_copied_ciphertext_does_not_open_in_another_field(keys):
    Vault.objects.create(label="a", secret="hunter2")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_vault SET other_secret = secret")
    with pytest.raises(crypto.DecryptionError):
        Vault.objects.get().other_secret


@pytest.mark.django_db
def test_swapped_rows_ciphertexts_do_not_open(keys):
    Vault.objects.create(label="a", secret="first-secret")
    Vault.objects.create(label="b", secret="second-secret")
    a, b = raw_column("secret")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_vault SET secret = %s WHERE label = 'a'", [b])
        cursor.execute("UPDATE testapp_vault SET secret = %s WHERE label = 'b'", [a])
    assert raw_column("secret") == [b, a]
    for row in Vault.objects.all():
        with pytest.raises(UnreadableSecret) as caught:
            row.secret
        assert caught.value.status_code == 409 and "cannot be read" in caught.value.message
        assert "first-secret" not in caught.value.message and "second-secret" not in caught.value.message


@pytest.mark.django_db
def test_a_row_is_listed_and_saved_without_opening_its_secrets(keys):
    Vault.objects.create(label="a", secret="hunter2")
    stored = raw_column("secret")[0]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_vault SET other_secret = secret")
    row = Vault.objects.get()
    assert is_set(row, "other_secret")
    row.label = "renamed"
    row.save()
    assert raw_column("secret") == [stored] and raw_column("other_secret") == [stored]


@pytest.mark.django_db
def test_queryset_update_takes_only_values_sealed_for_the_row(keys):
    row = Vault.objects.create(label="a")
    with pytest.raises(TypeError, match="sealed per row"), transaction.atomic():
        Vault.objects.filter(pk=row.pk).update(secret="plain")
    Vault.objects.filter(pk=row.pk).update(secret=Vault._meta.get_field("secret").seal("plain", row.pk))
    assert Vault.objects.get().secret == "plain"


@pytest.mark.django_db
def test_migration_binds_field_sealed_values_to_their_rows(keys):
    row = Vault.objects.create(label="a")
    legacy = crypto.encrypt("old-secret", "testapp.Vault.secret")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_vault SET secret = %s", [legacy])
    with pytest.raises(UnreadableSecret):
        Vault.objects.get().secret
    bind_to_rows(Vault, ["secret"])
    assert raw_column("secret") != [legacy]
    assert Vault.objects.get(pk=row.pk).secret == "old-secret"
    bind_to_rows(Vault, ["secret"])  # twice is harmless
    assert Vault.objects.get(pk=row.pk).secret == "old-secret"
    bind_to_rows(Vault, ["secret"], reverse=True)
    assert crypto.decrypt(raw_column("secret")[0], "testapp.Vault.secret") == "old-secret"


@pytest.mark.django_db
def test_rotate_master_key_reencrypts_everything(keys):
    for i in range(3):
        Vault.objects.create(label=str(i), secret=f"s{i}", other_secret=f"o{i}")
    old_id = crypto.keyring().current_id
    out = StringIO()
    call_command("rotate_master_key", stdout=out)
    new_id = crypto.keyring(reload=True).current_id
    assert new_id != old_id
    assert "6 value(s)" in out.getvalue()
    assert all(value.split(":")[1] == new_id for value in raw_column("secret") + raw_column("other_secret"))
    assert [(v.secret, v.other_secret) for v in Vault.objects.order_by("label")] == [(f"s{i}", f"o{i}") for i in range(3)]
    assert (keys / "keys" / f"{old_id}.key").exists()
    assert AuditEvent.objects.filter(action=AuditAction.MASTER_KEY_ROTATED, object_name=new_id).exists()


@pytest.mark.django_db
def test_rotate_then_purge_removes_unused_old_keys(keys):
    Vault.objects.create(label="a", secret="s")
    old_id = crypto.keyring().current_id
    call_command("rotate_master_key", "--purge", stdout=StringIO())
    assert not (keys / "keys" / f"{old_id}.key").exists()
    assert Vault.objects.get().secret == "s"


@pytest.mark.django_db
def test_values_sealed_by_a_retired_key_still_open(keys):
    Vault.objects.create(label="a", secret="s")
    old = crypto.keyring()
    stale = crypto.encrypt("straggler", "testapp.Vault.secret", ring=old)
    call_command("rotate_master_key", stdout=StringIO())
    assert crypto.decrypt(stale, "testapp.Vault.secret") == "straggler"


@pytest.mark.django_db
def test_rotation_with_env_key_needs_new_key_and_writes_no_key_files(keys, settings, tmp_path):
    settings.MASTER_KEY = crypto.encode_key(crypto.generate_key())
    crypto.keyring(reload=True)
    Vault.objects.create(label="a", secret="s")
    with pytest.raises(CommandError, match="supply the new key"):
        call_command("rotate_master_key", stdout=StringIO())
    new_key = crypto.generate_key()
    key_file = tmp_path / "new.key"
    key_file.write_text(crypto.encode_key(new_key))
    out = StringIO()
    call_command("rotate_master_key", "--new-key-file", str(key_file), stdout=out)
    assert "set PAM_MASTER_KEY" in out.getvalue()
    assert raw_column("secret")[0].split(":")[1] == crypto.key_id(new_key)
    assert not (keys / "keys").exists()
    settings.MASTER_KEY = crypto.encode_key(new_key)  # the restart with the new key
    crypto.keyring(reload=True)
    assert Vault.objects.get().secret == "s"


@pytest.mark.django_db
def test_rotation_to_the_current_key_is_refused(keys, tmp_path):
    Vault.objects.create(label="a", secret="s")
    key_file = tmp_path / "same.key"
    key_file.write_text(crypto.encode_key(crypto.keyring().current))
    with pytest.raises(CommandError, match="current key"):
        call_command("rotate_master_key", "--new-key-file", str(key_file), stdout=StringIO())


@pytest.mark.django_db
def test_rotation_with_bad_key_file_is_refused(keys, tmp_path):
    key_file = tmp_path / "bad.key"
    key_file.write_text("nope")
    with pytest.raises(CommandError):
        call_command("rotate_master_key", "--new-key-file", str(key_file), stdout=StringIO())
