from django.db import models


class NodeKind(models.TextChoices):
    WEB = "web", "Web node (websockets, live sessions)"
    WORKER = "worker", "Worker (tunnels)"
    BASTION = "bastion", "SSH bastion listener"
