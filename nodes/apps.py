from django.apps import AppConfig


class NodesConfig(AppConfig):
    """The processes of the installation that hold live work (web nodes with their sessions,
    workers with their tunnels, SSH listeners), their heartbeats, and the end of a silent one.
    Below every app that holds such work: it imports none of them, they answer ``nodes_lost``."""

    name = "nodes"
    verbose_name = "Nodes"
