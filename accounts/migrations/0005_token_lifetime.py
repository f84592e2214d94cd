"""Give every API key and personal token without an expiry the longest allowed lifetime.

Tokens made before TOKEN_MAX_LIFETIME_DAYS existed never expired; from now on every one does.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def set_expiry(apps, schema_editor):
    expires_at = timezone.now() + timedelta(days=settings.TOKEN_MAX_LIFETIME_DAYS)
    for name in ("ApiKey", "UserToken"):
        apps.get_model("accounts", name).objects.filter(expires_at__isnull=True).update(expires_at=expires_at)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_audit_event_repeats")]

    operations = [migrations.RunPython(set_expiry, migrations.RunPython.noop)]
