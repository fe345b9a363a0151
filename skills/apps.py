from django.apps import AppConfig


class SkillsConfig(AppConfig):
    name = "skills"
    verbose_name = "Skill library"

    def ready(self):
        from runs import reconcile

        from .shares import register_share_kind
        from .tasks import reconcile_validations

        register_share_kind()
        reconcile.register(reconcile_validations)  # admissions whose worker or message was lost
