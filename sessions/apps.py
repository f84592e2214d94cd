from django.apps import AppConfig


class SessionsConfig(AppConfig):
    # django.contrib.sessions already owns the label "sessions".
    name = "sessions"
    label = "pam_sessions"
    verbose_name = "Live sessions"

    def ready(self):
        from django.db.models.signals import pre_delete

        from accounts.models import User
        from accounts.signals import access_narrowed, access_revoked, credential_restricted
        from nodes.signals import nodes_lost
        from sessions.services.lifecycle import drop_attachments, end_sessions_of
        from sessions.services.nodes import on_nodes_lost

        def revoked(sender, user, actor, ip, **kwargs):
            end_sessions_of(user, actor=actor, ip=ip)
            drop_attachments("Your access was revoked.", user=user)

        access_revoked.connect(revoked, weak=False, dispatch_uid="sessions.access_revoked")
        access_narrowed.connect(
            lambda sender, user, **kwargs: drop_attachments("Your role changed: open the session again.", user=user),
            weak=False,
            dispatch_uid="sessions.access_narrowed",
        )
        credential_restricted.connect(
            lambda sender, credential, **kwargs: drop_attachments(
                "The token this terminal signed in with was revoked or restricted.", credential=credential
            ),
            weak=False,
            dispatch_uid="sessions.credential_restricted",
        )
        # A node that stopped beating took its live sessions with it.
        nodes_lost.connect(on_nodes_lost, weak=False, dispatch_uid="sessions.nodes_lost")
        # Before the user's Viewer rows go with them: their websockets must still be found.
        pre_delete.connect(
            lambda sender, instance, **kwargs: drop_attachments("Your account was deleted.", user=instance),
            sender=User,
            weak=False,
            dispatch_uid="sessions.user_deleted",
        )
