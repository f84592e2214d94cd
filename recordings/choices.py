from django.db import models


class IndexStatus(models.TextChoices):
    """Where a recording's text stands in the search index (audited-connections `index_status`)."""

    NOT_INDEXED = "NOT_INDEXED", "Not indexed"
    INDEXING = "INDEXING", "Indexing"
    INDEXED = "INDEXED", "Indexed"
    FAILED = "FAILED", "Failed"


class DownloadKind(models.TextChoices):
    LOG = "log", "Channel trail log"
    FILE = "file", "Transferred file"
