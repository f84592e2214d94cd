"""Plain functions that make test objects through the same services the product uses."""

import itertools

from django.contrib.auth.models import Group

from accounts.models import Role, User
from accounts.services.tokens import issue_api_key, issue_user_token

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_user(role="operator", *, username=None, email=None, password=PASSWORD, groups=(), active=True, **extra):
    n = next(_seq)
    username = username or f"{role}{n}"
    user = User.objects.create_user(
        username,
        email or f"{username}@example.com",
        password,
        role_id=role,
        is_active=active,
        **extra,
    )
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def make_role(name, permissions):
    return Role.objects.create(name=name, permissions=sorted(permissions))


def make_user_token(user, name=None, **kwargs):
    """Return ``(token, plaintext)``."""
    return issue_user_token(user=user, name=name or f"token-{next(_seq)}", actor=user, **kwargs)


def make_api_key(user, name=None, **kwargs):
    """Return ``(key, plaintext)``."""
    return issue_api_key(name=name or f"key-{next(_seq)}", user=user, **kwargs)


def make_folder(owner, name=None, **fields):
    from connections.models import ConnectionGroup

    return ConnectionGroup.objects.create(owner=owner, name=name or f"folder-{next(_seq)}", **fields)


def make_address_book_folder(name=None, scope="shared", groups=()):
    from connections.models import ConnectionGroup

    folder = ConnectionGroup.objects.create(owner=None, scope=scope, name=name or f"ab-{next(_seq)}")
    folder.allowed_groups.set(Group.objects.get_or_create(name=g)[0] for g in groups)
    return folder


def make_connection(owner, name=None, tags=(), **fields):
    """A connection saved directly (no service), for tests that are not about creating one."""
    from connections.models import Connection, ConnectionTag

    fields.setdefault("protocol", "ssh")
    fields.setdefault("host", "127.0.0.1")
    connection = Connection.objects.create(owner=owner, name=name or f"conn-{next(_seq)}", **fields)
    ConnectionTag.objects.bulk_create(ConnectionTag(connection=connection, name=t) for t in tags)
    return connection


def browser_with(*perms, name="custom"):
    """A Django test client signed in as a new user of a custom role holding ``perms``."""
    from django.test import Client

    make_role(name, perms)
    client = Client()
    client.user = make_user(name)
    client.force_login(client.user)
    return client
