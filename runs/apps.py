from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs and traces"

    def ready(self):
        from . import rechecks
        from .shares import register_share_kinds

        register_share_kinds()
        rechecks.connect()  # open live pages re-check access when membership, team or staff changes
