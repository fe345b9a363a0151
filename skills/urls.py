from django.urls import path

from . import views

app_name = "skills"
urlpatterns = [
    path("", views.skill_list, name="list"),
    path("export.zip", views.library_export, name="export_library"),
    path("import/", views.skill_import, name="import"),
    path("<int:pk>/", views.skill_detail, name="detail"),
    path("<int:pk>/export.md", views.skill_export, name="export"),
]
