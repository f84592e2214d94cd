"""The Celery app: `celery -A pam worker -B` runs health checks, indexing, tunnels, retention."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pam.settings")

app = Celery("pam")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
