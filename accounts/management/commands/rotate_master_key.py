from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from accounts.services.master_key import purge_unused_keys, rotate_master_key
from pam import crypto
from pam.exceptions import ServiceError


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential with a new master key. Without PAM_MASTER_KEY a new key "
        "is generated into the data directory; with it, pass --new-key-file and then restart every "
        "process with PAM_MASTER_KEY set to that key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--new-key-file", type=Path, help="File holding the new key (base64 of 32 bytes).")
        parser.add_argument(
            "--purge", action="store_true", help="Afterwards delete older keys that no stored value uses."
        )

    def handle(self, *args, new_key_file, purge, **options):
        new_key = None
        if new_key_file:
            try:
                new_key = crypto.decode_key(new_key_file.read_text(), str(new_key_file))
            except (OSError, ImproperlyConfigured) as exc:
                raise CommandError(str(exc)) from None
        try:
            result = rotate_master_key(new_key=new_key)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Re-encrypted {result['values']} value(s): key {result['old_key_id']} -> {result['new_key_id']}."
        )
        if settings.MASTER_KEY:
            self.stdout.write("Now set PAM_MASTER_KEY to the new key and restart every PAM process.")
        elif purge:
            removed = purge_unused_keys()
            self.stdout.write(f"Removed {len(removed)} unused key(s): {', '.join(removed) or 'none'}.")
