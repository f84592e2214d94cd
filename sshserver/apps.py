from django.apps import AppConfig


class SshServerConfig(AppConfig):
    name = "sshserver"
    verbose_name = "SSH bastion"
