"""Who may take part in a live session, and how: the one rule for the terminal websocket, the
client page and every reconnect.

- The owner takes part as owner (types, resizes, continues, ends) only while they could still
  open the session through the REST API: ``sessions.create`` for an ad-hoc session,
  ``sessions.connect`` and the connection still theirs to use for a saved one, always with the
  ``max_role`` of the token they came with. A demoted owner, or a token capped at viewer, is
  asked again at every attach and is an owner no more.
- A share-link holder watches. Through a read-write link they type only if they hold
  ``sessions.connect`` themselves: typing into targets is what that permission grants, and a
  link does not lend it to a viewer.
- Whoever may watch any session supervises (watch only).
- Files (``enable_drive``) are the owner's alone, under the same rule as their typing: a link
  lends a terminal, never bulk copying.

A share link is proven by the digest of its key (``sessions.services.sessions.share_digest``),
never the key itself, so a grant kept in a login session carries no secret and dies with a
rotation of the link.
"""

import hmac

from accounts.permissions import can
from accounts.roles import Perm
from connections.models import Connection
from sessions.choices import Access, ShareMode
from sessions.transports import transport_class

# Who may type and resize; the owner alone continues past the banner and ends from the terminal.
TYPING = (Access.OWNER, Access.COLLABORATOR)
# Who came in through the share link: they lose their seat when the link changes.
LINK_HOLDERS = (Access.VIEWER, Access.COLLABORATOR)


def may_type(user):
    """Whether ``user`` may type into targets at all (their role, under their token's cap)."""
    return can(user, Perm.SESSIONS_CONNECT)


def may_open(user, session):
    """Whether ``user`` could open ``session`` now, by the rule the REST API applies when opening one."""
    if session.owner_id != user.pk:
        return False
    if session.connection_id is None:
        return can(user, Perm.SESSIONS_CREATE)
    return may_type(user) and Connection.objects.usable_by(user).filter(pk=session.connection_id).exists()


def offers_files(session):
    """Whether ``session`` has a drive: opened with ``enable_drive``, on a transport with files."""
    transport = transport_class(session.session_type)
    return session.enable_drive and transport is not None and transport.files


def may_use_files(user, session):
    """Whether ``user`` may transfer files through ``session``: the owner, by the rule of their typing."""
    return offers_files(session) and may_open(user, session)


def holds_link(session, presented_digest):
    """Whether ``presented_digest`` is the digest of the session's current share key."""
    return bool(session.share_digest and presented_digest) and hmac.compare_digest(
        session.share_digest, presented_digest
    )


def access_for(user, session, presented_digest=""):
    """How ``user`` takes part in ``session`` (an ``Access``), or None: they may not attach."""
    if user is None or not user.is_authenticated:
        return None
    if may_open(user, session):
        return Access.OWNER
    if holds_link(session, presented_digest):
        if session.share_mode == ShareMode.READ_WRITE and may_type(user):
            return Access.COLLABORATOR
        return Access.VIEWER
    if can(user, Perm.SESSIONS_WATCH_ANY):
        return Access.SUPERVISOR
    return None


def _grant_name(session_id):
    return f"pam.share.{session_id}"


def grant_link(login, session):
    """Remember in a browser's login session that it holds the session's current share link."""
    login[_grant_name(session.pk)] = session.share_digest


def granted_link(login, session_id):
    """The share-link digest a browser's login session holds for the session, or ""."""
    return login.get(_grant_name(session_id), "")


def can_type(access):
    """Whether an attachment with ``access`` may type into the target."""
    return access in TYPING


def can_resize(access):
    """Whether an attachment with ``access`` may resize the terminal (whoever types)."""
    return access in TYPING


def can_continue(access):
    """Whether an attachment with ``access`` may continue past the banner: the owner alone."""
    return access == Access.OWNER


def can_end(access):
    """Whether an attachment with ``access`` may end the session from its terminal: the owner
    alone (and then still under sessions.terminate_own, checked by the lifecycle service)."""
    return access == Access.OWNER


def came_by_link(access):
    """Whether an attachment came in through the share link (it leaves when the link changes)."""
    return access in LINK_HOLDERS
