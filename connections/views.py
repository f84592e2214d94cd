"""Console page for connections: a shell that drives the connection-manager API from the browser.

The page is open to every signed-in user (viewers see what is shared with them); the flags below
only decide which buttons show. The API makes every decision again on each request.

Which protocols open a session in the browser (the Connect button) is not decided here:
connections sits below sessions and never imports it, so the page gets that list as
``session_protocols`` from sessions' context processor (sessions.context_processors), and the
template hands it to the script beside ``page``.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.permissions import can
from accounts.roles import Perm
from connections.choices import DEFAULT_PORTS, KEY_PROTOCOLS, Protocol


@login_required
def index(request):
    user = request.user
    page = {
        "userId": f"user_{user.pk}",
        "canCreate": can(user, Perm.CONNECTIONS_CREATE),
        "canShare": can(user, Perm.CONNECTIONS_SHARE),
        "canImportExport": can(user, Perm.CONNECTIONS_IMPORT_EXPORT),
        "canEditAny": can(user, Perm.CONNECTIONS_EDIT_ANY),
        "canDeleteAny": can(user, Perm.CONNECTIONS_DELETE_ANY),
        "canManageAddressBook": can(user, Perm.ADDRESSBOOK_MANAGE),
        "canRevealCredentials": can(user, Perm.CONNECTIONS_REVEAL),
        "canConnect": can(user, Perm.SESSIONS_CONNECT),
        # connections.policy.can_stop_tunnels: also those who may end anyone's sessions.
        "canStopAnyTunnel": can(user, Perm.SESSIONS_TERMINATE_ANY),
        "protocols": [
            {"value": p.value, "label": p.label, "defaultPort": DEFAULT_PORTS[p]} for p in Protocol
        ],
        "keyProtocols": list(KEY_PROTOCOLS),
    }
    return render(
        request,
        "connections/index.html",
        {
            "page": page,
            "can_create": page["canCreate"],
            "can_share": page["canShare"],
            # connection-manager: import also creates connections, so it needs both permissions.
            "can_import": page["canImportExport"] and page["canCreate"],
            "can_export": page["canImportExport"],
            "protocols": Protocol.choices,
        },
    )
