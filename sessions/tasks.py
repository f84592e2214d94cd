from celery import shared_task

from sessions.services import nodes


@shared_task
def reap_lost_sessions():
    """End the sessions of nodes that stopped, and sessions never opened; return how many."""
    return nodes.reap_lost_sessions()
