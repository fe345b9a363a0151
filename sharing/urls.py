from django.urls import path

from . import targets, views

app_name = "sharing"
urlpatterns = [
    path("new/", views.create, name="create"),
    path("links/<int:pk>/revoke/", views.revoke, name="revoke"),
    path("<str:token>/", views.view, name="view"),
]
# Pages a link opens beyond its target, registered by the apps that own them (runs: a shared run's traces
# and keyframe images).
urlpatterns += [path(f"<str:token>/{p.route}", views.page, {"shared_page": p}, name=p.name) for p in targets.pages()]
