from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("tasks", views.TaskViewSet, basename="task")
router.register("runs", views.RunViewSet, basename="run")
router.register("experiments", views.ExperimentViewSet, basename="experiment")
router.register("actors", views.ActorViewSet, basename="actor")
router.register("agent-calls", views.AgentCallViewSet, basename="agent-call")
router.register("candidates", views.CandidateViewSet, basename="candidate")
router.register("episodes", views.EpisodeViewSet, basename="episode")
router.register("calls", views.PrimitiveCallViewSet, basename="call")
router.register("keyframes", views.KeyframeViewSet, basename="keyframe")

app_name = "api"
urlpatterns = [path("", include(router.urls))]
