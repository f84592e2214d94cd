"""Model fields shared by every app."""

from django import forms
from django.core import checks
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from pam import crypto
from pam.exceptions import Conflict


class SecretInput(forms.PasswordInput):
    """A write-only input: never renders the stored value; left blank, keeps it."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"autocomplete": "new-password", **(attrs or {})}, render_value=False)

    def value_omitted_from_data(self, data, files, name):
        return not data.get(name)


class UnreadableSecret(crypto.DecryptionError, Conflict):
    """A stored secret does not open for its row: a 409 that says so, never the value."""


class Sealed:
    """A ciphertext as stored: what a row holds until its secret is read."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __bool__(self):
        return bool(self.text)

    def __eq__(self, other):
        return isinstance(other, Sealed) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return "<sealed secret>"


class SecretAttribute(DeferredAttribute):
    """Opens the row's ciphertext when the attribute is read, with the row's primary key at hand."""

    def __get__(self, instance, cls=None):
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            return self.field.open(value.text, instance.pk)
        return value

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A secret stored encrypted with the master key; the model attribute holds the plaintext.

    Each value is sealed for its field *and its row* (``app.Model.field:<pk>`` is the AES-GCM
    associated data), so a ciphertext copied into another field or swapped with another row's
    does not open: reading it raises ``UnreadableSecret`` (a 409), never another row's secret.
    Binding to the primary key needs the key before the first INSERT, so a model with such a
    field must give its primary key a default (a random id or a UUID; system check pam.E001),
    rather than encrypting after the insert or keeping a second per-row id: one id, known when
    the value is sealed, the same one every query names the row by.

    Values are opened lazily, when the attribute is read (``from_db_value`` knows no row), and
    an unchanged value is written back as it was read. The empty string stays empty in the
    database, so "has a secret" is asked without decrypting (``is_set``). A queryset
    ``update()`` takes ``field.seal(value, pk)``, never plaintext. Lookups other than
    emptiness are meaningless on this field.
    """

    descriptor_class = SecretAttribute

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", "")
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    @property
    def field_context(self):
        """What values were bound to before rows were: the field alone (migrations use it)."""
        return f"{self.model._meta.label}.{self.name}"

    def context(self, pk):
        return f"{self.field_context}:{pk}"

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        if not self.model._meta.pk.has_default():
            errors.append(
                checks.Error(
                    "An encrypted field binds its values to the row's primary key, which must be known "
                    "before the row is inserted.",
                    hint="Give the primary key a default (a random id or a UUID).",
                    obj=self,
                    id="pam.E001",
                )
            )
        return errors

    def seal(self, value, pk):
        """The stored form of ``value`` for the row ``pk`` (for a queryset ``update()``)."""
        return Sealed(crypto.encrypt(value, self.context(pk))) if value else ""

    def open(self, text, pk):
        try:
            return crypto.decrypt(text, self.context(pk))
        except crypto.DecryptionError as exc:
            name = self.verbose_name
            raise UnreadableSecret(
                f"The stored {name} of {self.model._meta.verbose_name} {pk} cannot be read ({exc}); "
                f"it must be entered again."
            ) from None

    def from_db_value(self, value, expression, connection):
        return Sealed(value) if value else value

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname, "")
        if not value or isinstance(value, Sealed):
            return value
        if model_instance.pk is None:
            raise ValueError(f"{self.model._meta.label} needs its primary key before its {self.name} is sealed.")
        return self.seal(value, model_instance.pk)

    def get_prep_value(self, value):
        if isinstance(value, Sealed):
            return value.text
        value = super().get_prep_value(value)
        if value:
            raise TypeError(f"{self.field_context} is sealed per row: save the model or update() with field.seal().")
        return value

    def value_from_object(self, obj):
        """Forms and serializers start from nothing: a stored secret is write-only."""
        return ""

    def formfield(self, **kwargs):
        return forms.CharField(
            label=self.verbose_name.capitalize(),
            required=False,
            strip=False,
            widget=SecretInput,
            help_text="Write-only: leave blank to keep the stored value.",
        )


def is_set(instance, name):
    """Whether ``instance`` stores a value in the encrypted field ``name``, without opening it."""
    if name not in instance.__dict__:
        instance.refresh_from_db(fields=[name])
    return bool(instance.__dict__[name])


def bind_to_rows(model, names, *, reverse=False):
    """Re-seal ``model``'s values sealed for their field alone for their row (or back, ``reverse``).

    A data-migration step. A value already in the wanted form, or opening in neither (already
    unreadable), is left as it is.
    """
    fields = [model._meta.get_field(name) for name in names]
    rows = model._base_manager.values_list("pk", *names)
    for pk, *values in rows.iterator(chunk_size=500):
        updates = {}
        for field, value in zip(fields, values):
            if not value:
                continue
            old, new = (field.context(pk), field.field_context) if reverse else (field.field_context, field.context(pk))
            try:
                plain = crypto.decrypt(value.text, old)
            except crypto.DecryptionError:
                continue
            updates[field.name] = Sealed(crypto.encrypt(plain, new))
        if updates:
            model._base_manager.filter(pk=pk).update(**updates)
