from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("skills/", include("skills.urls")),
    path("api/skills/", include("skills.api.urls")),
    path("", include("runs.urls")),
]
