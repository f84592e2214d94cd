from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_builtin_roles(sender, using="default", **kwargs):
    """Keep a row for every built-in role, so users and tokens can refer to it."""
    from accounts import roles
    from accounts.models import Role

    for name in roles.BUILTIN_ROLE_NAMES:
        Role.objects.using(using).update_or_create(
            name=name, defaults={"builtin": True, "description": roles.BUILTIN_ROLE_DESCRIPTIONS[name]}
        )


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Identity and access"

    def ready(self):
        from accounts import schema, signals  # noqa: F401  (OpenAPI schemes; login audit)

        post_migrate.connect(ensure_builtin_roles, sender=self)
