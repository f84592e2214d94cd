"""Browser pages of sessions: quick connect (GET /api/connect), the terminal (/client/<id>) and
the console's list of sessions.

session-broker: a quick-connect GET must not open a session behind the user's back, so it shows
a confirmation (or the inline credential form) unless the link comes from a trusted origin such
as the NetBox URL (PAM_CONNECT_TRUSTED_ORIGINS); the session is opened by the POST.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from accounts.authentication import client_ip
from accounts.permissions import can
from accounts.roles import Perm
from accounts.views import login_required_sso, require_perm
from connections.choices import DEFAULT_PORTS
from connections.models import ConnectionGroup
from pam.exceptions import ServiceError
from sessions.choices import SessionType
from sessions.models import Session
from sessions.services import sessions as service

DISPLAY = ("width", "height", "dpi")


class BadLink(Exception):
    """The quick-connect link itself is wrong."""


def _trusted(request):
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    parts = urlsplit(source)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return bool(origin) and origin in settings.CONNECT_TRUSTED_ORIGINS


def _int(params, name, low, high):
    raw = params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadLink(f"{name} must be a number from {low} to {high}.")
    return int(raw)


def _display(params):
    sizes = {name: _int(params, name, 48 if name == "dpi" else 100, 10000) for name in DISPLAY}
    return {k: v for k, v in sizes.items() if v is not None}


def _entry(request, params):
    scope, folder, name = params.get("scope"), params.get("folder"), params.get("entry")
    if scope not in ("shared", "instance"):
        raise BadLink("scope must be shared or instance.")
    visible = ConnectionGroup.objects.address_book_visible_to(request.user)
    return get_object_or_404(get_object_or_404(visible, scope=scope, name=folder).connections, name=name)


def _ad_hoc(params):
    protocol = params.get("protocol") or SessionType.SSH
    if protocol not in SessionType.values:
        raise BadLink(f"protocol must be one of {', '.join(SessionType.values)}.")
    host = params.get("hostname", "")
    if not host:
        raise BadLink("hostname is required.")
    port = _int(params, "port", 1, 65535) or DEFAULT_PORTS.get(protocol, 22)
    return {"session_type": protocol, "host": host, "port": port, "username": params.get("username", "")}


@login_required_sso
@require_http_methods(["GET", "POST"])
def quick_connect(request):
    """GET /api/connect: confirm (or ask for credentials), then open the session and go there."""
    params = request.GET if request.method == "GET" else request.POST
    book = all(params.get(k) for k in ("scope", "folder", "entry"))
    try:
        display = _display(params)
        if book:
            if not can(request.user, Perm.SESSIONS_CONNECT):
                return _refused(request, "Opening sessions needs the operator role or higher.")
            entry = _entry(request, params)
            target = {"name": entry.display_name or entry.name, "where": entry.endpoint(), "username": entry.username}
            ask = service.needs_credentials(entry)
        else:
            if not can(request.user, Perm.SESSIONS_CREATE):
                return _refused(request, "Ad-hoc sessions need the poweruser role or higher.")
            spec = _ad_hoc(params)
            target = {"name": spec["host"], "where": (spec["host"], spec["port"]), "username": spec["username"]}
            ask = True  # no credentials travel in a link: ask for them
    except BadLink as exc:
        return render(request, "sessions/connect.html", {"error": str(exc)}, status=400)
    if request.method == "GET" and (ask or not _trusted(request)):
        return render(request, "sessions/connect.html", {"target": target, "ask": ask, "params": params.items()})
    ip = client_ip(request)
    credentials = {"username": params.get("username") or target["username"], "password": params.get("password", "")}
    try:
        if book:
            session, _ = service.connect_connection(
                actor=request.user, connection=entry, ip=ip, **credentials, **display
            )
        else:
            spec["username"] = credentials["username"]
            session, _ = service.create_session(
                actor=request.user, ip=ip, password=credentials["password"], **spec, **display
            )
    except ServiceError as exc:
        context = {"target": target, "ask": ask, "params": params.items(), "error": exc.message}
        return render(request, "sessions/connect.html", context, status=exc.status_code)
    return HttpResponseRedirect(f"/client/{session.pk}")


def _refused(request, message):
    return render(request, "sessions/connect.html", {"error": message}, status=403)


@login_required_sso
def client(request, session_id):
    """The full-window terminal of a session (the websocket decides who may do what)."""
    session = get_object_or_404(Session, pk=session_id)
    return render(
        request,
        "sessions/client.html",
        {
            "session": session,
            "is_owner": session.owner_id == request.user.pk,
            "can_terminate": can(request.user, Perm.SESSIONS_TERMINATE_OWN, session),
            "key": request.GET.get("key", ""),
        },
    )


def client_share_link(request, session_id, key):
    """session-broker share_url form ``/client/<id>&key=<key>``: the same page, key as a query."""
    return HttpResponseRedirect(f"/client/{session_id}?key={key}")


@require_perm(Perm.SESSIONS_VIEW)
def index(request):
    return render(request, "sessions/index.html", {"watch_any": can(request.user, Perm.SESSIONS_WATCH_ANY)})
