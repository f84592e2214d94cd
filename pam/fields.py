"""Model fields shared by every app."""

from django import forms
from django.db import models

from pam import crypto


class SecretInput(forms.PasswordInput):
    """A write-only input: never renders the stored value; left blank, keeps it."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"autocomplete": "new-password", **(attrs or {})}, render_value=False)

    def value_omitted_from_data(self, data, files, name):
        return not data.get(name)


class EncryptedTextField(models.TextField):
    """A secret stored encrypted with the master key; the model attribute holds the plaintext.

    The empty string stays empty in the database, so "has a secret" can be asked without
    decrypting. Lookups other than emptiness are meaningless on this field.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", "")
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    @property
    def context(self):
        return f"{self.model._meta.label}.{self.name}"

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return crypto.decrypt(value, self.context)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value, self.context)

    def formfield(self, **kwargs):
        return forms.CharField(
            label=self.verbose_name.capitalize(),
            required=False,
            strip=False,
            widget=SecretInput,
            help_text="Write-only: leave blank to keep the stored value.",
        )
