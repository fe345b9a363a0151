"""REST endpoints of experiments: launching one, and reading its actors and agent calls. Thin: launching
comes from experiments.services; rows are narrowed to the runs the caller may read (runs.access)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.services import teams_of
from runs.api import filters as F
from runs.api.serializers import ENGINE_FIELDS, RunSerializer
from runs.api.views import RunScopedViewSet, listed
from runs.models import Actor, AgentCall, Task
from runs.services import LaunchError, get_task

from ..services import create_experiment, start_experiment
from .serializers import ActorSerializer, AgentCallSerializer, ExperimentCreateSerializer


class ExperimentViewSet(viewsets.GenericViewSet):
    """Launch experiments (fix loop, evolutionary search, zero-shot transfer, library scaling). The
    created run is read and cancelled through /api/runs/; its actors through /api/actors/."""

    serializer_class = ExperimentCreateSerializer

    @extend_schema(
        request=ExperimentCreateSerializer,
        responses={201: RunSerializer, 400: OpenApiResponse(description="Field errors")},
    )
    def create(self, request):
        data = ExperimentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        tasks = []
        try:
            for key in v["tasks"]:
                tasks.append(get_task(key))
            if v.get("suite"):
                suite = list(Task.objects.filter(suite=v["suite"]))
                if not suite:
                    raise LaunchError("suite", f"no tasks in suite {v['suite']!r}")
                tasks += [t for t in suite if t not in tasks]
            team = None
            if v.get("team"):
                team = teams_of(request.user).filter(name=v["team"]).first()
                if team is None:
                    raise LaunchError("team", f"you are not a member of a team named {v['team']!r}")
            search_keys = (
                "candidates_per_round",
                "max_rounds",
                "survivors",
                "target_success",
                "plateau_points",
                "max_replays",
            )
            run = create_experiment(
                kind=v["kind"],
                tasks=tasks,
                owner=request.user,
                team=team,
                source="api",
                agent={
                    "backend": v["agent"],
                    **({"model": v["model"]} if v.get("model") else {}),
                    **({"base_url": v["base_url"]} if v.get("base_url") else {}),
                },
                search={k: v[k] for k in search_keys if k in v},
                engine={k: v[k] for k in ENGINE_FIELDS if k in v} or None,
                library_sizes=v.get("library_sizes") or None,
                debug_seeds=v.get("debug_seeds"),
                heldout_seeds=v.get("heldout_seeds"),
                record=v.get("record", False),
            )
        except LaunchError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        start_experiment(run)
        return Response(RunSerializer(run, context={"request": request}).data, status=status.HTTP_201_CREATED)


ACTOR_FILTERS = (F.Filter("run", "run_id"), F.Filter("status", "status", str), F.Filter("task", "task__key", str))


@listed(ACTOR_FILTERS)
class ActorViewSet(RunScopedViewSet):
    """One task's search in an experiment: rounds, best program, debug and held-out success, cost."""

    queryset = Actor.objects.select_related("task").order_by("id")
    serializer_class = ActorSerializer
    filters = ACTOR_FILTERS


AGENT_CALL_FILTERS = (
    F.Filter("run", "run_id"),
    F.Filter("actor", "actor_id"),
    F.Filter("round", "round", bounds=F.INT_RANGE),
)


@listed(AGENT_CALL_FILTERS)
class AgentCallViewSet(RunScopedViewSet):
    """Every agent conversation with its tokens, cost, tools used and the skills it was offered."""

    queryset = AgentCall.objects.order_by("id")
    serializer_class = AgentCallSerializer
    filters = AGENT_CALL_FILTERS
