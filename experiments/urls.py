from django.urls import path

from . import views

app_name = "experiments"
urlpatterns = [
    path("experiments/new/", views.experiment_create, name="create"),
    path("actors/<int:pk>/", views.actor_detail, name="actor"),
    path("actors/<int:pk>/conversation/", views.actor_conversation, name="conversation"),
    path("actors/<int:pk>/conversation.json", views.actor_conversation_json, name="conversation_json"),
    path("plots/", views.experiment_plots, name="plots"),
]
