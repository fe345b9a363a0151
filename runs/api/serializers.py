"""REST shapes of tasks, runs, candidates, episodes, calls and keyframes (experiments.api adds actors and
agent calls).

The call shape is also what live pages receive (runs.live) and what the trace page embeds, so a script,
a websocket listener and the browser all read one format.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from worker.engine import MAX_STEP_BUDGET, NO_STEP_BUDGET
from worker.robot.occupancy import UNKNOWN_SPACE_POLICIES
from worker.robot.profiles import PROFILE_CHOICES
from worker.sim.catalog import SEED_MAX, SeedError, validate_seeds

from ..models import Candidate, Episode, Keyframe, PrimitiveCall, Run, Task
from ..services import PERCEPTION_MODES
from ..work import ENGINE_KEYS


class TaskSerializer(serializers.ModelSerializer):
    has_starter_program = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "key",
            "benchmark",
            "suite",
            "name",
            "instruction",
            "cameras",
            "arms",
            "debug_seeds",
            "heldout_seeds",
            "has_starter_program",
        ]

    def get_has_starter_program(self, task) -> bool:
        return bool(task.starter_program)


class RunSerializer(serializers.ModelSerializer):
    task = serializers.SlugRelatedField(slug_field="key", read_only=True)
    scope = serializers.CharField(read_only=True, help_text="The task, or how many tasks an experiment covers")
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    team = serializers.SlugRelatedField(slug_field="name", read_only=True)
    url = serializers.SerializerMethodField(help_text="The run's page")
    uncontained_episodes = serializers.IntegerField(
        read_only=True,
        help_text="Episodes whose program ran without OS containment (ASPIRE_SANDBOX=process); "
        "0 when every program ran inside the bubblewrap + seccomp sandbox",
    )

    class Meta:
        model = Run
        fields = [
            "id",
            "url",
            "task",
            "scope",
            "owner",
            "team",
            "kind",
            "status",
            "source",
            "seeds",
            "settings",
            "perception_mode",
            "success_rate",
            "n_episodes",
            "n_success",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "event_seq",
            "uncontained_episodes",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_usd",
        ]

    def get_url(self, run) -> str:
        return run.get_absolute_url()


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": SEED_MAX}, "uniqueItems": True},
            {"type": "string", "example": "101-103"},
        ]
    }
)
class SeedsField(serializers.Field):
    """Seeds as a list of integers or a string of ranges and lists ("101-103", "1,4,9"), checked by
    worker.sim.catalog.validate_seeds: integers in 0..2**32-1, no repeats, at most
    ASPIRE["MAX_SEEDS_PER_RUN"] of them."""

    def to_internal_value(self, data):
        try:
            return validate_seeds(data, limit=django_settings.ASPIRE["MAX_SEEDS_PER_RUN"])
        except SeedError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return value


#: The launch fields that are engine settings (runs.work.ENGINE_KEYS less what only the engine's own
#: callers set: tracing and keyframes are always on for launched runs), for run and experiment launches.
ENGINE_FIELDS = tuple(k for k in ENGINE_KEYS if k not in ("trace", "keyframes"))


class RunCreateSerializer(serializers.Serializer):
    """Launch a run: one program (the task's starter, or your own) on seeds."""

    task = serializers.CharField(help_text='Task key, e.g. "robosuite:Lift"')
    program = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Program source; leave out to run the task's starter program",
    )
    seeds = SeedsField()
    wall_seconds = serializers.FloatField(required=False, min_value=1, max_value=300, help_text="Per-episode limit, s")
    memory_mb = serializers.IntegerField(required=False, min_value=128, max_value=16384)
    perception_mode = serializers.ChoiceField(
        choices=PERCEPTION_MODES,
        required=False,
        help_text="realistic (default): segmentation with a model's errors, noisy depth; oracle: the simulator's "
        "exact segmentation and depth (an upper bound, not comparable with published camera-only results)",
    )
    api_profile = serializers.ChoiceField(
        choices=PROFILE_CHOICES,
        required=False,
        help_text="auto (default): the published CaP-X / ASPIRE reduced API's conventions when the program uses "
        "them, else native; native or published fixes it (see the API reference)",
    )
    step_budget = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=NO_STEP_BUDGET,
        max_value=MAX_STEP_BUDGET,
        help_text="Control steps (20 Hz) per episode; leave out (or null) for the task's benchmark budget; "
        "0 for none (exploration; not comparable with published results)",
    )
    depth_noise = serializers.BooleanField(
        required=False, help_text="Depth sensor noise in the realistic perception mode (default true)"
    )
    unknown_space = serializers.ChoiceField(
        choices=UNKNOWN_SPACE_POLICIES,
        required=False,
        help_text="How motion planning treats space no camera has seen: free (default) or occupied",
    )
    recording = serializers.BooleanField(
        required=False,
        help_text="Record each episode as a video (the episode's recording; default false over the API, on for "
        "runs launched from the browser); costs up to about a third more time per episode",
    )
    team = serializers.CharField(required=False, allow_blank=True, help_text="Team name to share the run with")
    label = serializers.CharField(required=False, allow_blank=True, max_length=200)


class KeyframeSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField(help_text="JPEG, readable with the same credentials")

    class Meta:
        model = Keyframe
        fields = ["id", "episode", "call", "kind", "camera", "label", "width", "height", "image_url"]

    def get_image_url(self, kf) -> str:
        url = reverse("api:keyframe-image", args=[kf.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class PrimitiveCallSerializer(serializers.ModelSerializer):
    keyframes = serializers.SerializerMethodField()

    class Meta:
        model = PrimitiveCall
        fields = [
            "id",
            "episode",
            "seq",
            "primitive",
            "status",
            "message",
            "error",
            "line",
            "stack",
            "args",
            "result",
            "artifacts",
            "started_at",
            "duration_ms",
            "sim_time",
            "keyframes",
        ]

    @extend_schema_field(KeyframeSerializer(many=True))
    def get_keyframes(self, call):
        # The sink passes the keyframes it has just written, so a live event costs no extra query.
        given = self.context.get("keyframes", {}).get(call.pk)
        return KeyframeSerializer(
            call.keyframes.all() if given is None else given, many=True, context=self.context
        ).data


#: The recording index's fields the API gives (worker.robot.recording.Recorder.index), with their defaults.
RECORDING_INDEX = {"fps": 2.0, "duration": 0, "frames": [], "calls": [], "truncated": False}


class EpisodeSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="The episode's trace page")
    contained = serializers.BooleanField(
        read_only=True,
        help_text="False when the program ran without OS "
        "containment (the worker was started with ASPIRE_SANDBOX=process)",
    )
    final_keyframes = serializers.SerializerMethodField()
    recording = serializers.SerializerMethodField(
        help_text="The episode's video, or null when it was not recorded: url (the MP4), fps, duration "
        "(video seconds), frames (each frame's simulated time, s), calls ([seq, t_start, t_end] in video "
        "seconds), truncated"
    )
    scene3d_url = serializers.SerializerMethodField(
        help_text="The episode's 3D view (gzip'd JSON, worker.robot.scene3d; /api/episodes/<id>/scene3d/), "
        'readable with the same credentials; "" when it has none'
    )

    class Meta:
        model = Episode
        fields = [
            "id",
            "url",
            "run",
            "candidate",
            "seed",
            "split",
            "status",
            "success",
            "reward",
            "error",
            "error_line",
            "stdout",
            "stderr",
            "duration_s",
            "sim_time",
            "n_calls",
            "control_steps",
            "step_budget",
            "api_profile",
            "api_profile_reason",
            "program_hash",
            "sandbox",
            "contained",
            "started_at",
            "finished_at",
            "final_keyframes",
            "recording",
            "scene3d_url",
        ]

    def get_url(self, ep) -> str:
        return ep.get_absolute_url()

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_recording(self, ep) -> dict | None:
        if not ep.recording:
            return None
        url = reverse("api:episode-recording", args=[ep.pk])
        request = self.context.get("request")
        index = ep.recording_index or {}
        return {
            "url": request.build_absolute_uri(url) if request is not None else url,
            **{key: index.get(key, default) for key, default in RECORDING_INDEX.items()},
        }

    def get_scene3d_url(self, ep) -> str:
        url = reverse("api:episode-scene3d", args=[ep.pk]) if ep.scene3d else ""
        request = self.context.get("request")
        return request.build_absolute_uri(url) if url and request is not None else url

    @extend_schema_field(KeyframeSerializer(many=True))
    def get_final_keyframes(self, ep):
        return KeyframeSerializer(
            [k for k in ep.keyframes.all() if k.call_id is None], many=True, context=self.context
        ).data


class CandidateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Candidate
        fields = [
            "id",
            "run",
            "actor",
            "round",
            "index",
            "label",
            "hypothesis",
            "origin",
            "parent",
            "params",
            "program",
            "program_hash",
            "success_rate",
            "n_episodes",
            "n_success",
            "heldout_rate",
            "agent_call",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_usd",
            "created_at",
        ]
