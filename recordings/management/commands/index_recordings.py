from django.core.management.base import BaseCommand

from recordings import indexing
from recordings.models import Recording


class Command(BaseCommand):
    help = "Rebuild the search index of recordings: all closed ones, or those named."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="Recording names (as listed by GET /api/recordings).")
        parser.add_argument("--missing", action="store_true", help="Only those not indexed yet, or failed.")

    def handle(self, *args, names, missing, **options):
        recordings = Recording.objects.filter(ended_at__isnull=False).order_by("started_at")
        if names:
            recordings = recordings.filter(name__in=names)
        if missing:
            recordings = recordings.exclude(index_status="INDEXED")
        failed = 0
        for recording_id, name in recordings.values_list("pk", "name"):
            status = indexing.index_recording(recording_id, force=True)
            failed += status == "FAILED"
            self.stdout.write(f"{name}: {status}")
        if failed:
            self.stderr.write(f"{failed} recording(s) could not be indexed.")
