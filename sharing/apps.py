from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"
    verbose_name = "Share links"

    def ready(self):
        from accounts.sections import AccountSection, register_section

        from .models import ShareLink

        register_section(
            AccountSection(
                "sharing/_account_links.html",
                lambda request: {"links": ShareLink.objects.filter(created_by=request.user).select_related("run")},
            )
        )
