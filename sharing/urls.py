from django.urls import path

from . import views

app_name = "sharing"
urlpatterns = [
    path("new/", views.create, name="create"),
    path("links/<int:pk>/revoke/", views.revoke, name="revoke"),
    path("<str:token>/", views.view, name="view"),
    path("<str:token>/episodes/<int:pk>/", views.episode, name="episode"),
    path("<str:token>/keyframes/<int:pk>.jpg", views.keyframe, name="keyframe"),
]
