"""What every model admin of the product shares: refusals as messages, and an audit trail.

Who may open which admin page is decided by ``User.has_perm`` from ``roles.ADMIN_PERMS``;
admin actions name their entry there through ``allowed_permissions`` and ``action_permission``.
Saves that change important state go through the same services as the API, which audit them;
``AuditedAdmin`` audits the plain saves of models that have no service.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db import transaction
from django.http import HttpResponseRedirect

from accounts.authentication import client_ip
from accounts.choices import AuditAction
from accounts.services.audit import record_event
from pam.exceptions import ServiceError
from pam.fields import EncryptedTextField, is_set


def action_permission(name):
    """Return a ``has_<name>_permission`` method asking ``roles.ADMIN_PERMS`` for ``name``."""

    def has_permission(self, request):
        return request.user.has_perm(f"{self.opts.app_label}.{name}_{self.opts.model_name}")

    return has_permission


def _stored_or_none(field):
    """A read-only stand-in for an encrypted field: whether a value is stored, never the value."""

    def shown(obj):
        return "stored" if obj.pk and is_set(obj, field.name) else "none"

    shown.short_description = field.verbose_name
    shown.__name__ = field.name
    return shown


class SecretsNeverShown:
    """A page showing a row read-only says whether each encrypted field holds a value.

    Django admin prints read-only fields' values, which for an encrypted field is the decrypted
    secret, to whoever may only view the row. Editable, the fields are write-only inputs.
    """

    def secrets_read_only(self, request, obj):
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        secret = {f.name: f for f in self.model._meta.concrete_fields if isinstance(f, EncryptedTextField)}
        if not secret or not self.secrets_read_only(request, obj):
            return fieldsets

        def shown(name):
            if isinstance(name, (list, tuple)):
                return tuple(shown(n) for n in name)
            return _stored_or_none(secret[name]) if name in secret else name

        return [(title, {**options, "fields": [shown(n) for n in options["fields"]]}) for title, options in fieldsets]


class SecretsNeverShownInline(SecretsNeverShown):
    """The same for an inline, read-only when its parent or its own rows may not be changed."""

    def secrets_read_only(self, request, obj):
        parent = self.admin_site._registry[self.parent_model]
        editable = parent.has_change_permission(request, obj) if obj else parent.has_add_permission(request)
        return not (editable and self.has_change_permission(request, obj))

    def get_formset(self, request, obj=None, **kwargs):
        # Unlike a model admin's form, an inline's form is built from every name in its
        # fieldsets, stand-ins included: the form gets the field names only.
        if "fields" not in kwargs:
            names = flatten_fieldsets(self.get_fieldsets(request, obj))
            kwargs["fields"] = [name for name in names if isinstance(name, str)]
        return super().get_formset(request, obj, **kwargs)


class ServiceAdmin(SecretsNeverShown, admin.ModelAdmin):
    """A model admin whose saves, deletes and actions may call services.

    A service's refusal rolls back everything the request did and comes back as an error
    message, instead of a 500 or a half-saved object.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        view = super().changeform_view
        return self._refusals_as_messages(request, view, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        return self._refusals_as_messages(request, super().delete_view, object_id, extra_context)

    def changelist_view(self, request, extra_context=None):
        return self._refusals_as_messages(request, super().changelist_view, extra_context)

    def _refusals_as_messages(self, request, view, *args):
        try:
            with transaction.atomic():
                return view(request, *args)
        except ServiceError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class AuditedAdmin(ServiceAdmin):
    """A model admin that writes an audit row for each addition, change and deletion.

    It hooks Django's own admin log (called inside the request's transaction, after a save and
    before a delete), so inline changes and password changes are included in the details.
    """

    audit_actions = {
        "created": AuditAction.ADMIN_CREATED,
        "changed": AuditAction.ADMIN_CHANGED,
        "deleted": AuditAction.ADMIN_DELETED,
    }

    def audit_name(self, obj):
        return str(obj)

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self._audit(request, "created", obj, entry.get_change_message())
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        self._audit(request, "changed", obj, entry.get_change_message())
        return entry

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, "deleted", obj, "")
        return super().log_deletions(request, queryset)

    def _audit(self, request, verb, obj, message):
        action = self.audit_actions.get(verb)
        if action is None:  # a service audits this one
            return
        record_event(
            action=action,
            user=request.user,
            object_type=self.opts.model_name,
            object_name=self.audit_name(obj),
            ip=client_ip(request),
            details=f"in the admin site: {message}".rstrip(": "),
        )
