from celery import shared_task

from connections.services.health import check_all_connections


@shared_task
def check_connection_health():
    """Check every connection's endpoint and store its status and latency."""
    return check_all_connections()
