"""Browser pages of sessions: quick connect (GET /api/connect), the terminal (/client/<id>), the
share link's landing page (/client/<id>/join) and the console's list of sessions.

session-broker: a quick-connect GET must not open a session behind the user's back, so it shows
a confirmation (or the inline credential form) unless the link comes from a trusted origin such
as the NetBox URL (PAM_CONNECT_TRUSTED_ORIGINS); the session is opened by the POST.
"""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.authentication import client_ip
from accounts.permissions import can
from accounts.roles import Perm
from accounts.views import login_required_sso, require_perm, sso_or_login_redirect
from connections.choices import DEFAULT_PORTS
from connections.models import Connection, ConnectionGroup
from pam.exceptions import ServiceError
from sessions import policy
from sessions.choices import Access, SessionType
from sessions.models import Session
from sessions.services import sessions as service

DISPLAY = ("width", "height", "dpi")


# ASCII digits only (str.isdigit admits "²"), few enough that int() never refuses them.
NUMBER = re.compile(r"[0-9]{1,6}")
# A host name or IP literal (IPv6 included); the target deny list judges it afterwards.
HOSTNAME = re.compile(r"[A-Za-z0-9._:\[\]%-]{1,255}")
MAX_USERNAME = 255


class BadLink(Exception):
    """The quick-connect link itself is wrong."""


class NoSuchEntry(Exception):
    """The address-book entry does not exist or is not in the user's folders."""


def _username(params):
    username = params.get("username", "")
    if len(username) > MAX_USERNAME:
        raise BadLink(f"username must be at most {MAX_USERNAME} characters.")
    return username


def _trusted(request):
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    parts = urlsplit(source)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return bool(origin) and origin in settings.CONNECT_TRUSTED_ORIGINS


def _int(params, name, low, high):
    raw = params.get(name)
    if raw in (None, ""):
        return None
    if not NUMBER.fullmatch(raw) or not low <= int(raw) <= high:
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
    entry = Connection.objects.filter(group__in=visible.filter(scope=scope, name=folder), name=name).first()
    if entry is None:
        raise NoSuchEntry(f"No address-book entry {scope}/{folder}/{name} you may use.")
    return entry


def _ad_hoc(params):
    protocol = params.get("protocol") or SessionType.SSH
    if protocol not in SessionType.values:
        raise BadLink(f"protocol must be one of {', '.join(SessionType.values)}.")
    host = params.get("hostname", "")
    if not host:
        raise BadLink("hostname is required.")
    if not HOSTNAME.fullmatch(host):
        raise BadLink("hostname must be a host name or an IP address.")
    port = _int(params, "port", 1, 65535) or DEFAULT_PORTS.get(protocol, 22)
    return {"session_type": protocol, "host": host, "port": port, "username": _username(params)}


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
            username = _username(params) or entry.username
            target = {"name": entry.display_name or entry.name, "where": entry.endpoint(), "username": username}
            ask = service.needs_credentials(entry, username)
        else:
            if not can(request.user, Perm.SESSIONS_CREATE):
                return _refused(request, "Ad-hoc sessions need the poweruser role or higher.")
            spec = _ad_hoc(params)
            target = {"name": spec["host"], "where": (spec["host"], spec["port"]), "username": spec["username"]}
            ask = True  # no credentials travel in a link: ask for them
    except BadLink as exc:
        return render(request, "sessions/connect.html", {"error": str(exc)}, status=400)
    except NoSuchEntry as exc:
        return render(request, "sessions/connect.html", {"error": str(exc)}, status=404)
    if request.method == "GET" and (ask or not _trusted(request)):
        return render(request, "sessions/connect.html", {"target": target, "ask": ask, "params": params.items()})
    ip = client_ip(request)
    # A password counts only when the form asked for one: a link never carries a password.
    typed = request.method == "POST" and ask
    credentials = {
        "username": target["username"],
        "password": request.POST.get("password", "") if typed else "",
    }
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
    """The full-window terminal of a session; 404 to whoever may not attach to it (sessions.policy)."""
    granted = policy.granted_link(request.session, session_id)
    session = Session.objects.attachable_by(request.user, granted).filter(pk=session_id).first()
    access = policy.access_for(request.user, session, granted) if session is not None else None
    if access is None:
        raise Http404("No such session.")
    return render(
        request,
        "sessions/client.html",
        {
            "session": session,
            "is_owner": access == Access.OWNER,
            "can_drive": policy.may_use_files(request.user, session),
            "can_terminate": can(request.user, Perm.SESSIONS_TERMINATE_OWN, session),
        },
    )


@require_http_methods(["GET", "POST"])
def join(request, session_id):
    """A share link, ``/client/<id>/join#key=<key>``: redeem its key, then go to the terminal.

    Browsers never send a URL's fragment, so the key reaches no server log: the page's script
    (static/console/join.js) posts it, and a valid key is remembered in the login session as
    the link's digest (sessions.policy), which the terminal page and its websocket accept. The
    page itself is the same for every id and anyone: it tells nothing about the session.
    """
    if request.method == "GET":
        login = "" if request.user.is_authenticated else sso_or_login_redirect(request)["Location"]
        return render(request, "sessions/join.html", {"session_id": session_id, "login_url": login})
    if not request.user.is_authenticated:
        return sso_or_login_redirect(request)
    session = Session.objects.filter(pk=session_id).first()
    if session is None or not service.share_key_matches(session, request.POST.get("key", "")):
        context = {"session_id": session_id, "error": "This share link is not valid: it may have been replaced."}
        return render(request, "sessions/join.html", context, status=404)
    policy.grant_link(request.session, session)
    return HttpResponseRedirect(f"/client/{session.pk}")
@require_perm(Perm.SESSIONS_VIEW)
def index(request):
    user = request.user
    page = {
        "userEmail": user.email,
        "canWatchAny": can(user, Perm.SESSIONS_WATCH_ANY),
        "canTerminateAny": can(user, Perm.SESSIONS_TERMINATE_ANY),
        "canViewRecordings": can(user, Perm.RECORDINGS_VIEW),
    }
    sees_all = page["canWatchAny"] or page["canTerminateAny"]
    return render(request, "sessions/index.html", {"page": page, "sees_all": sees_all})
