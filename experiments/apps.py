from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self):
        # The run page (runs) shows an experiment's actors and search progress through this hook.
        from runs import reconcile, work
        from runs.presenters import register_run_page_extension

        from . import coordinator
        from .presenters import RUN_PAGE
        from .shares import register_shared_pages

        register_run_page_extension(RUN_PAGE)
        # A run's share link also opens its actors' conversation pages.
        register_shared_pages()
        # The round barrier runs after each settled episode; the reconciler re-sends stranded steps.
        work.episode_settled.connect(coordinator.on_episode_settled, dispatch_uid="experiments.barrier")
        reconcile.register(coordinator.reconcile_experiments)
