"""Folders: personal folders of the connection tree and the address book's scoped folders.

A personal folder nests under another folder of the same owner; moving a folder under itself
or under one of its descendants is refused. Deleting a folder deletes its subfolders and every
connection in them.
"""

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from accounts.choices import AuditAction
from accounts.permissions import can
from accounts.roles import Perm
from accounts.services.audit import record_event
from connections import policy
from connections.models import ConnectionGroup, address_book_folder_name_error
from pam.exceptions import Conflict, Forbidden, InvalidInput


def _audit(action, actor, folder, ip, details=""):
    record_event(action=action, user=actor, object_type="folder", object_name=f"{folder.pk} {folder}", ip=ip, details=details)


def _check_parent(actor, parent, folder=None):
    if parent is None:
        return
    if parent.is_address_book or parent.owner_id != actor.pk:
        raise InvalidInput("The parent folder must be one of your own folders.", field="parent")
    if folder is not None:
        ancestor = parent
        while ancestor is not None:
            if ancestor.pk == folder.pk:
                raise InvalidInput("A folder cannot move under itself or one of its subfolders.", field="parent")
            ancestor = ancestor.parent


def create_folder(*, actor, name, parent=None, sort_order=0, ip=None):
    """Create a personal folder."""
    if not can(actor, Perm.CONNECTIONS_CREATE):
        raise Forbidden("Creating folders needs the connections.create permission.")
    _check_parent(actor, parent)
    with transaction.atomic():
        folder = ConnectionGroup.objects.create(name=name, parent=parent, owner=actor, sort_order=sort_order)
        _audit(AuditAction.FOLDER_CREATED, actor, folder, ip)
    return folder


def update_folder(*, actor, folder, changes, ip=None):
    """Rename or move a personal folder (``changes``: ``name``, ``parent``)."""
    if not policy.can_edit_folder(actor, folder) or folder.is_address_book:
        raise Forbidden("You may not change this folder.")
    with transaction.atomic():
        folder = ConnectionGroup.objects.select_for_update().get(pk=folder.pk)
        if "parent" in changes:
            _check_parent(actor, changes["parent"], folder)
            folder.parent = changes["parent"]
        if "name" in changes:
            folder.name = changes["name"]
        folder.save(update_fields=["name", "parent"])
        _audit(AuditAction.FOLDER_UPDATED, actor, folder, ip, ", ".join(sorted(changes)))
    return folder


def delete_folder(*, actor, folder, ip=None):
    """Delete a folder with its subfolders and all their connections."""
    if not policy.can_edit_folder(actor, folder):
        raise Forbidden("You may not delete this folder.")
    with transaction.atomic():
        _audit(AuditAction.FOLDER_DELETED, actor, folder, ip)
        folder.delete()


def _groups(names):
    return [Group.objects.get_or_create(name=name)[0] for name in names]


def create_address_book_folder(*, actor, scope, name, allowed_groups=(), description="", ip=None):
    """Create an address-book folder (session-broker POST /api/addressbook/folders)."""
    if not can(actor, Perm.ADDRESSBOOK_MANAGE):
        raise Forbidden("Managing the address book needs the addressbook.manage permission.")
    if error := address_book_folder_name_error(name):
        raise InvalidInput(error, field="name")
    try:
        with transaction.atomic():
            folder = ConnectionGroup.objects.create(scope=scope, name=name, description=description, owner=None)
            folder.allowed_groups.set(_groups(allowed_groups))
            _audit(AuditAction.FOLDER_CREATED, actor, folder, ip, f"groups: {', '.join(allowed_groups) or 'none'}")
    except IntegrityError:
        raise Conflict(f"The {scope} scope already has a folder named {name!r}.", field="name") from None
    return folder


def update_address_book_folder(*, actor, folder, changes, ip=None):
    """Change an address-book folder's allowed groups and description."""
    if not can(actor, Perm.ADDRESSBOOK_MANAGE):
        raise Forbidden("Managing the address book needs the addressbook.manage permission.")
    with transaction.atomic():
        if "description" in changes:
            folder.description = changes["description"]
            folder.save(update_fields=["description"])
        if "allowed_groups" in changes:
            folder.allowed_groups.set(_groups(changes["allowed_groups"]))
        _audit(AuditAction.FOLDER_UPDATED, actor, folder, ip, ", ".join(sorted(changes)))
    return folder
