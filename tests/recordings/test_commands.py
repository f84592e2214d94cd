"""manage.py index_recordings and verify_recordings on a real recording."""

import io

import pytest
from django.core.management import CommandError, call_command

from recordings import chain
from tests.factories import make_user
from tests.recordings.conftest import record

pytestmark = pytest.mark.django_db(transaction=True)


def test_rebuild_then_verify_and_find_a_flipped_byte(sshd):
    recording, _ = record(make_user("poweruser"), sshd, [(["echo command-$((6*7))\r"], "command-42")])
    out = io.StringIO()
    call_command("index_recordings", recording.name, stdout=out)
    assert f"{recording.name}: INDEXED" in out.getvalue()
    call_command("index_recordings", "--missing", stdout=(out := io.StringIO()))
    assert recording.name not in out.getvalue()  # indexed already

    call_command("verify_recordings", stdout=(out := io.StringIO()))
    assert f"{recording.name}: OK" in out.getvalue()
    data = bytearray(recording.path.read_bytes())
    data[len(data) // 2] ^= 0x04
    recording.path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="1 recording"):
        call_command("verify_recordings", recording.name, stdout=(out := io.StringIO()))
    offset = len(data) // 2 - (len(data) // 2) % chain.BLOCK
    assert f"{recording.name}: ALTERED at offset {offset}" in out.getvalue()
    with pytest.raises(CommandError, match="No such recording"):
        call_command("verify_recordings", "2026/01/01/nothing.cast")
