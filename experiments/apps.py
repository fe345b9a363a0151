from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self):
        # The run page (runs) shows an experiment's actors and search progress through this hook.
        from runs.presenters import register_run_page_extension

        from .presenters import RUN_PAGE

        register_run_page_extension(RUN_PAGE)
