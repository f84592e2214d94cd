from celery import shared_task

from recordings import indexing, services


@shared_task
def index_recording(recording_id):
    """Index a closed recording for search (queued when its session ends); return its status."""
    return indexing.index_recording(recording_id)


@shared_task
def sweep_unindexed_recordings():
    """Index the closed recordings that were missed (the broker was down) or whose worker died."""
    done = 0
    for recording_id in indexing.unindexed():
        if indexing.index_recording(recording_id):
            done += 1
    return done


@shared_task
def delete_expired_recordings():
    """Delete the recordings, index and trails past their retention period; return how many sessions went."""
    return services.delete_expired()
