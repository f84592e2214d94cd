from django.apps import AppConfig


class TargetsConfig(AppConfig):
    """What PAM connects to, below both connections and sessions: the deny list, routes and hops,
    the SSH client, and the host keys pinned per route."""

    name = "targets"
    verbose_name = "Targets"
