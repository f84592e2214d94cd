"""The console's Recordings pages: the list with its filters and text search, and playback.

The list renders on the server; its filter form asks again through htmx, which swaps only the
results (``request.htmx``). A text search of three characters or more also lists the lines
found, each opening playback at the second it was shown. Playback is asciinema-player (npm),
reading the file from the API (so each playback is audited there) with the typed commands beside
it as markers.
"""

import math

from django.core.paginator import Paginator
from django.shortcuts import render

from accounts.choices import AuditAction
from accounts.services.audit import record_event
from accounts.authentication import client_ip
from accounts.permissions import can
from accounts.roles import Perm
from accounts.views import require_perm
from recordings import search
from recordings.api.views import recording_named, visible_recordings
from recordings.choices import IndexStatus
from recordings.filters import RecordingFilter
from recordings.models import RecordingCommand
from sessions.choices import SessionType, Status

PAGE_SIZE = 50
HITS = 50


@require_perm(Perm.RECORDINGS_VIEW)
def index(request):
    filters = RecordingFilter(request.GET, queryset=visible_recordings(request.user).order_by("-started_at", "-pk"))
    page = Paginator(filters.qs if filters.is_valid() else filters.queryset.none(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    text = request.GET.get("q", "").strip()
    hits, more = [], False
    if len(text) >= search.MIN_QUERY and filters.is_valid():
        # The hits come from the recordings the other filters leave (the text is what is sought).
        others = request.GET.copy()
        others.pop("q")
        within = RecordingFilter(others, queryset=visible_recordings(request.user)).qs
        everything = not any(others.values()) and can(request.user, Perm.RECORDINGS_VIEW_ANY)
        hits, more = search.find(text, within, limit=HITS, per_recording=5, everything=everything)
        record_event(
            action=AuditAction.RECORDINGS_SEARCHED, user=request.user, object_type="recording",
            ip=client_ip(request), details=text[:200],
        )
    context = {
        "filters": filters, "page": page, "query": query.urlencode(), "text": text, "hits": hits, "more": more,
        "protocols": SessionType.choices, "statuses": Status.choices, "index_statuses": IndexStatus.choices,
        "sees_all": can(request.user, Perm.RECORDINGS_VIEW_ANY), "min_query": search.MIN_QUERY,
    }
    template = "recordings/results.html" if request.htmx else "recordings/index.html"
    return render(request, template, context)


@require_perm(Perm.RECORDINGS_VIEW)
def play(request, name):
    recording = recording_named(request, name)
    commands = list(RecordingCommand.objects.filter(recording=recording).values("at", "text"))
    try:
        start = float(request.GET.get("t", 0))
    except ValueError:
        start = 0.0
    start = start if math.isfinite(start) and start > 0 else 0.0  # the page's JSON has no Infinity
    player = {"url": f"/api/recordings/{recording.name}", "startAt": start, "commands": commands}
    return render(request, "recordings/play.html", {"recording": recording, "player": player})
