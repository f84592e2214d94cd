from django.core.management.base import BaseCommand, CommandError

from recordings.models import Recording
from recordings.services import verify_recording


class Command(BaseCommand):
    help = "Check recordings against their SHA-256 chains: all, or those named. Exits 1 if one was altered."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="Recording names (as listed by GET /api/recordings).")

    def handle(self, *args, names, **options):
        recordings = Recording.objects.order_by("started_at")
        if names:
            recordings = recordings.filter(name__in=names)
            unknown = set(names) - set(recordings.values_list("name", flat=True))
            if unknown:
                raise CommandError(f"No such recording: {', '.join(sorted(unknown))}")
        altered = 0
        for recording in recordings:
            try:
                verdict = verify_recording(recording)
            except OSError as exc:
                altered += 1
                self.stdout.write(f"{recording.name}: MISSING ({exc.strerror})")
                continue
            if verdict.intact:
                self.stdout.write(f"{recording.name}: OK")
            else:
                altered += 1
                offset = "" if verdict.first_altered_offset is None else f" at offset {verdict.first_altered_offset}"
                self.stdout.write(f"{recording.name}: ALTERED{offset}: {verdict.detail}")
        if altered:
            raise CommandError(f"{altered} recording(s) altered or missing.")
