from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Connections"

    def ready(self):
        from accounts.signals import access_revoked
        from connections.services.tunnels import on_nodes_lost, stop_tunnels_of
        from nodes.signals import nodes_lost

        # A user whose access is cut keeps no tunnel open either.
        access_revoked.connect(
            lambda sender, user, actor, ip, **kwargs: stop_tunnels_of(user, actor=actor, ip=ip),
            weak=False,
            dispatch_uid="connections.stop_tunnels_of",
        )
        # A worker that stopped beating left its tunnels for another one.
        nodes_lost.connect(on_nodes_lost, weak=False, dispatch_uid="connections.nodes_lost")
