from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from accounts.models import User
from accounts.services.tokens import issue_api_key
from pam.exceptions import ServiceError


class Command(BaseCommand):
    help = "Create an API key acting as a user. The last line printed is the key; it is shown once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--user", required=True, help="Username the key acts as.")
        parser.add_argument("--expires-at", help="ISO 8601 expiry, e.g. 2027-01-31T00:00:00Z.")
        parser.add_argument(
            "--allow-ip", action="append", default=[], help="Address or CIDR allowed to use the key (repeatable)."
        )

    def handle(self, *args, name, user, expires_at, allow_ip, **options):
        account = User.objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"No user named {user!r}.")
        expiry = None
        if expires_at:
            expiry = parse_datetime(expires_at)
            if expiry is None or expiry.tzinfo is None:
                raise CommandError("--expires-at must be an ISO 8601 date-time with a time zone.")
        try:
            _, token = issue_api_key(name=name, user=account, expires_at=expiry, allowed_ips=allow_ip)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"API key {name!r} created for {account.username}; it is shown only once:")
        self.stdout.write(token)
