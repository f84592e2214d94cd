from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown

from connections import tunnels
from connections.services import tunnels as tunnel_service
from connections.services.health import check_all_connections


@shared_task
def check_connection_health():
    """Check every connection's endpoint and store its status and latency."""
    return check_all_connections()


@shared_task
def start_tunnels(connection_id):
    """Open, in this worker process, the connection's tunnels waiting for a worker; return how many.

    The tunnels outlive the task: this process's tunnel manager holds them (connections.tunnels).
    """
    return tunnels.manager().claim(connection_id)


@shared_task
def stop_tunnels(connection_id):
    """Wake this process's tunnel manager, and finish stops whose worker is gone; return those.

    The worker holding the tunnels closes them on its own when it next reads their rows; this
    task only makes that quicker when it lands on the same process.
    """
    current = tunnels.running_manager()
    if current is not None:
        current.wake()
    return tunnel_service.finish_lost_stops(connection_id)


@shared_task
def reap_lost_tunnels():
    """Reopen the tunnels of workers that went silent; return how many tunnels changed."""
    return tunnel_service.reap_lost_tunnels()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _hand_back_tunnels(**kwargs):
    """A worker stopping closes its ports and leaves its tunnels for the next worker."""
    tunnels.shutdown(release=True)
