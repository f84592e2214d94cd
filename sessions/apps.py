from django.apps import AppConfig


class SessionsConfig(AppConfig):
    # django.contrib.sessions already owns the label "sessions".
    name = "sessions"
    label = "pam_sessions"
    verbose_name = "Live sessions"
