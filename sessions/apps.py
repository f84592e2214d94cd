from django.apps import AppConfig


class SessionsConfig(AppConfig):
    # django.contrib.sessions already owns the label "sessions".
    name = "sessions"
    label = "pam_sessions"
    verbose_name = "Live sessions"

    def ready(self):
        from django.db.models.signals import pre_delete

        from accounts.models import User
        from accounts.signals import access_narrowed, access_revoked
        from sessions.services.sessions import drop_attachments_of, end_sessions_of

        def revoked(sender, user, actor, ip, **kwargs):
            end_sessions_of(user, actor=actor, ip=ip)
            drop_attachments_of(user, "Your access was revoked.")

        access_revoked.connect(revoked, weak=False, dispatch_uid="sessions.access_revoked")
        access_narrowed.connect(
            lambda sender, user, **kwargs: drop_attachments_of(user, "Your role changed: open the session again."),
            weak=False,
            dispatch_uid="sessions.access_narrowed",
        )
        # Before the user's Viewer rows go with them: their websockets must still be found.
        pre_delete.connect(
            lambda sender, instance, **kwargs: drop_attachments_of(instance, "Your account was deleted."),
            sender=User,
            weak=False,
            dispatch_uid="sessions.user_deleted",
        )
