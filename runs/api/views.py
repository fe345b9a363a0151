"""REST endpoints of tasks, runs and their traces (experiments.api adds experiments, actors and agent calls).
Thin: visibility comes from runs.access, launching and cancelling from runs.services; every queryset is
narrowed to what the caller may read, so other people's ids are 404."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.services import teams_of

from .. import services
from ..access import visible_runs
from ..media import keyframe_response
from ..media_views import recording_response, scene3d_response, scene3d_rrd_response
from ..models import Candidate, Episode, Keyframe, PrimitiveCall, Run, Task
from . import filters as F
from .serializers import (
    ENGINE_FIELDS,
    CandidateSerializer,
    EpisodeSerializer,
    KeyframeSerializer,
    PrimitiveCallSerializer,
    RunCreateSerializer,
    RunSerializer,
    TaskSerializer,
)


class FilteredViewSet(viewsets.GenericViewSet):
    filters: tuple[F.Filter, ...] = ()

    def filter_queryset(self, queryset):
        return F.apply(queryset, self.request.query_params, self.filters)


def listed(filters):
    """Class decorator: the list endpoint's OpenAPI parameters from the viewset's declared filters."""
    return extend_schema_view(list=extend_schema(parameters=F.parameters(filters)))


TASK_FILTERS = (F.Filter("benchmark", "benchmark", str), F.Filter("suite", "suite", str), F.Filter("key", "key", str))


@listed(TASK_FILTERS)
class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FilteredViewSet):
    """Benchmark tasks that runs can be launched on."""

    queryset = Task.objects.all()
    serializer_class = TaskSerializer
    filters = TASK_FILTERS


RUN_FILTERS = (
    F.Filter("status", "status", str, "QUEUED, RUNNING, FINISHED, FAILED or CANCELLED"),
    F.Filter("task", "task__key", str, 'Task key, e.g. "robosuite:Lift"'),
    F.Filter("team", "team__name", str),
    F.Filter("owner", "owner__username", str),
    F.Filter("source", "source", str),
    F.Filter("perception_mode", "perception_mode", str),
)


@listed(RUN_FILTERS)
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, FilteredViewSet):
    """Runs you own or that are shared with your teams. Creating one launches it on the worker pool."""

    serializer_class = RunSerializer
    filters = RUN_FILTERS

    def get_queryset(self):
        return visible_runs(self.request.user, Run.objects.select_related("task", "owner", "team"))

    @extend_schema(
        request=RunCreateSerializer, responses={201: RunSerializer, 400: OpenApiResponse(description="Field errors")}
    )
    def create(self, request, *args, **kwargs):
        data = RunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = self._launch(data.validated_data)
        return Response(RunSerializer(run, context={"request": request}).data, status=status.HTTP_201_CREATED)

    def _launch(self, v: dict) -> Run:
        try:
            task = services.get_task(v["task"])
            team = None
            if v.get("team"):
                team = teams_of(self.request.user).filter(name=v["team"]).first()
                if team is None:
                    raise services.LaunchError("team", f"you are not a member of a team named {v['team']!r}")
            program = v.get("program")
            if program is None:
                if not task.starter_program:
                    raise services.LaunchError("program", f"{task.key} has no built-in starter program; send one")
                program = task.starter_program
            overrides = {k: v[k] for k in ENGINE_FIELDS if k in v}
            run = services.create_program_run(
                task=task,
                program=program,
                seeds=v["seeds"],
                origin="starter" if "program" not in v else "api",
                owner=self.request.user,
                team=team,
                source="api",
                settings=overrides,
                label=v.get("label", ""),
            )
        except services.LaunchError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        services.start_run(run)
        return run

    @extend_schema(
        request=None, responses={200: RunSerializer, 409: OpenApiResponse(description="The run already ended")}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued or running run: its queued episodes never start, the running ones end CANCELLED."""
        run = self.get_object()
        try:
            run = services.cancel_run(run, by=request.user)
        except services.CancelError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RunSerializer(run, context={"request": request}).data)


class RunScopedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FilteredViewSet):
    """Read-only rows that belong to a run: narrowed to the runs the caller may read, so other
    people's ids answer 404 like missing ones. ``run_field`` is the lookup path to the run."""

    run_field = "run"

    def get_queryset(self):
        return self.queryset.filter(**{f"{self.run_field}__in": visible_runs(self.request.user).values("pk")})


CANDIDATE_FILTERS = (
    F.Filter("run", "run_id"),
    F.Filter("actor", "actor_id"),
    F.Filter("round", "round", bounds=F.POSITIVE_INT_RANGE),
    F.Filter("origin", "origin", str),
)


@listed(CANDIDATE_FILTERS)
class CandidateViewSet(RunScopedViewSet):
    """Programs evaluated in runs, with their success on the run's seeds."""

    queryset = Candidate.objects.all()
    serializer_class = CandidateSerializer
    filters = CANDIDATE_FILTERS


EPISODE_FILTERS = (
    F.Filter("run", "run_id"),
    F.Filter("candidate", "candidate_id"),
    F.Filter("seed", "seed", bounds=F.SEED_RANGE),
    F.Filter("status", "status", str, "RUNNING, OK, EXCEPTION, TIMEOUT, ..."),
    F.Filter("success", "success", bool),
    F.Filter("split", "split", str, "debug, heldout or custom"),
)


@listed(EPISODE_FILTERS)
class EpisodeViewSet(RunScopedViewSet):
    """One candidate on one seed: how the program ended and whether the task was achieved."""

    queryset = Episode.objects.prefetch_related("keyframes").order_by("id")
    serializer_class = EpisodeSerializer
    filters = EPISODE_FILTERS

    @extend_schema(
        responses={
            (200, "video/mp4"): OpenApiResponse(description="The episode's H.264 MP4 (byte ranges honoured: 206)"),
            (404, "application/json"): OpenApiResponse(description="The episode has no recording"),
        }
    )
    @action(detail=True, methods=["get"])
    def recording(self, request, pk=None):
        """The episode's video (the run setting ``recording``); ``recording.calls`` in the episode maps
        each call to its span of video seconds."""
        return recording_response(request, self.get_object())

    @extend_schema(
        responses={
            (200, "application/gzip"): OpenApiResponse(description="The episode's 3D view (worker.robot.scene3d)"),
            (404, "application/json"): OpenApiResponse(description="The episode has no 3D view"),
        }
    )
    @action(detail=True, methods=["get"])
    def scene3d(self, request, pk=None):
        """The episode's 3D view: gzip'd JSON of point clouds, mask points, grasp candidates, targets,
        planned and executed gripper paths and joint angles, world frame, metres (worker.robot.scene3d)."""
        return scene3d_response(self.get_object())

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                description="The episode's 3D view as a Rerun recording (open with the rerun viewer of "
                "worker.robot.rrd.RERUN_VERSION)"
            ),
            (404, "application/json"): OpenApiResponse(description="The episode has no 3D view"),
        }
    )
    @action(detail=True, methods=["get"])
    def rrd(self, request, pk=None):
        """The episode's 3D view as a Rerun .rrd recording (worker.robot.rrd)."""
        return scene3d_rrd_response(self.get_object())


CALL_FILTERS = (
    F.Filter("episode", "episode_id"),
    F.Filter("status", "status", str),
    F.Filter("primitive", "primitive", str),
    F.Filter(
        "after_seq",
        "seq__gt",
        int,
        "Only calls after this sequence number (to follow a live episode)",
        bounds=F.INT_RANGE,
    ),
)


@listed(CALL_FILTERS)
class PrimitiveCallViewSet(RunScopedViewSet):
    """Trace records: one per robot API call, in episode order."""

    queryset = PrimitiveCall.objects.prefetch_related(Prefetch("keyframes", Keyframe.objects.order_by("id"))).order_by(
        "episode_id", "seq"
    )
    serializer_class = PrimitiveCallSerializer
    filters = CALL_FILTERS
    run_field = "episode__run"


KEYFRAME_FILTERS = (F.Filter("episode", "episode_id"), F.Filter("call", "call_id"), F.Filter("kind", "kind", str))


@listed(KEYFRAME_FILTERS)
class KeyframeViewSet(RunScopedViewSet):
    """Camera frames and overlays the engine wrote; ``image_url`` serves the JPEG."""

    queryset = Keyframe.objects.order_by("id")
    serializer_class = KeyframeSerializer
    filters = KEYFRAME_FILTERS
    run_field = "episode__run"

    @extend_schema(responses={(200, "image/jpeg"): OpenApiResponse(description="The JPEG file")})
    @action(detail=True, methods=["get"])
    def image(self, request, pk=None):
        return keyframe_response(self.get_object())
