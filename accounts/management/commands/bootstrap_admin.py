import secrets

from django.core.management.base import BaseCommand

from accounts import roles
from accounts.models import User

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "On a new installation, create the 'admin' user and print its generated password once."

    def handle(self, *args, **options):
        if User.objects.filter(username=ADMIN_USERNAME).exists() or User.objects.filter(role_id=roles.ADMIN).exists():
            return
        password = secrets.token_urlsafe(15)
        User.objects.create_superuser(ADMIN_USERNAME, "admin@localhost", password)
        self.stdout.write(
            "\nCreated the first administrator. This password is shown only once:\n"
            f"    username: {ADMIN_USERNAME}\n"
            f"    password: {password}\n"
        )
