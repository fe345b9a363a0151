from django.apps import AppConfig


class SkillsConfig(AppConfig):
    name = "skills"
    verbose_name = "Skill library"

    def ready(self):
        from .shares import register_share_kind

        register_share_kind()
