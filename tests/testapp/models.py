import uuid

from django.db import models

from pam.fields import EncryptedTextField


class Vault(models.Model):
    """A model holding secrets, to test the shared encrypted field on its own."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    label = models.CharField(max_length=50)
    secret = EncryptedTextField()
    other_secret = EncryptedTextField()
