from celery import shared_task
from django.utils import timezone

from accounts.models import LoginSession


@shared_task
def purge_expired_logins():
    """Delete browser logins past their expiry; return how many went."""
    return LoginSession.objects.filter(expire_date__lt=timezone.now()).delete()[0]
