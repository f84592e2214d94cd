from django.apps import AppConfig


class SessionsConfig(AppConfig):
    # django.contrib.sessions already owns the label "sessions".
    name = "sessions"
    label = "pam_sessions"
    verbose_name = "Live sessions"

    def ready(self):
        from accounts.signals import access_revoked
        from sessions.services.sessions import end_sessions_of

        access_revoked.connect(
            lambda sender, user, actor, ip, **kwargs: end_sessions_of(user, actor=actor, ip=ip),
            weak=False,
            dispatch_uid="sessions.end_sessions_of",
        )
