from django.apps import AppConfig


class SkillsConfig(AppConfig):
    name = "skills"
    verbose_name = "Skill library"

    def ready(self):
        # Registers validate_skill_task with Celery in every process that loads Django: the worker
        # imports only worker.tasks itself.
        from . import tasks  # noqa: F401
