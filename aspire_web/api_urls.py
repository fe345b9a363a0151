"""The REST API's one router (namespace "api", under /api/): the viewsets of runs and experiments, in the
order the browsable API root lists them. The skill library's endpoints live under /api/skills/."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from experiments.api import views as experiments
from runs.api import views as runs

router = DefaultRouter()
router.register("tasks", runs.TaskViewSet, basename="task")
router.register("runs", runs.RunViewSet, basename="run")
router.register("experiments", experiments.ExperimentViewSet, basename="experiment")
router.register("actors", experiments.ActorViewSet, basename="actor")
router.register("agent-calls", experiments.AgentCallViewSet, basename="agent-call")
router.register("candidates", runs.CandidateViewSet, basename="candidate")
router.register("episodes", runs.EpisodeViewSet, basename="episode")
router.register("calls", runs.PrimitiveCallViewSet, basename="call")
router.register("keyframes", runs.KeyframeViewSet, basename="keyframe")

app_name = "api"
urlpatterns = [path("", include(router.urls))]
