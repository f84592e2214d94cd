from django.db import models

from pam.fields import EncryptedTextField


class Vault(models.Model):
    """A model holding secrets, to test the shared encrypted field on its own."""

    label = models.CharField(max_length=50)
    secret = EncryptedTextField()
    other_secret = EncryptedTextField()
