from django.contrib import admin

from .models import ShareLink


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ("kind", "target_id", "label", "created_by", "created_at", "revoked_at", "last_used_at")
    list_filter = ("kind",)
    readonly_fields = ("token_hash",)
