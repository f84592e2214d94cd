"""Database session engine that records the user of each login (see LoginSession)."""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore


class SessionStore(DbSessionStore):
    @classmethod
    def get_model_class(cls):
        from accounts.models import LoginSession

        return LoginSession

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        user_id = data.get(SESSION_KEY)
        instance.user_id = int(user_id) if user_id is not None else None
        return instance
