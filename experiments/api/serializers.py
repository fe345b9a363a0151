"""REST shapes of actors, agent calls and the experiment launch request."""

from __future__ import annotations

from django.conf import settings as django_settings
from rest_framework import serializers

from runs.api.serializers import SeedsField
from runs.models import Actor, AgentCall
from runs.services import PERCEPTION_MODES
from worker.engine import MAX_STEP_BUDGET, NO_STEP_BUDGET
from worker.robot.occupancy import UNKNOWN_SPACE_POLICIES


class ActorSerializer(serializers.ModelSerializer):
    task = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Actor
        fields = [
            "id",
            "run",
            "task",
            "library_size",
            "status",
            "settings",
            "current_round",
            "stop_reason",
            "best",
            "first_debug_rate",
            "final_debug_rate",
            "heldout_rate",
            "proposed_skills",
            "error",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_usd",
            "created_at",
            "started_at",
            "finished_at",
        ]


class AgentCallSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentCall
        fields = [
            "id",
            "run",
            "actor",
            "round",
            "backend",
            "model",
            "purpose",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_usd",
            "turns",
            "duration_s",
            "tool_calls",
            "retrieved_skills",
            "error",
            "created_at",
        ]


class ExperimentCreateSerializer(serializers.Serializer):
    """Launch an experiment: one actor per task searches with an agent, then held-out evaluation."""

    kind = serializers.ChoiceField(choices=["fix_loop", "search", "zero_shot", "scaling"])
    tasks = serializers.ListField(
        child=serializers.CharField(max_length=300),
        required=False,
        default=list,
        max_length=django_settings.ASPIRE["MAX_TASKS_PER_EXPERIMENT"],
        help_text="Task keys",
    )
    suite = serializers.CharField(required=False, allow_blank=True, help_text="Or every task of this suite")
    agent = serializers.ChoiceField(
        choices=["offline", "claude", "openai", "mcp"],
        default="offline",
        help_text="mcp: each actor's agent is your own MCP client (/mcp/actors/<id>/ or manage.py mcp_server)",
    )
    model = serializers.CharField(required=False, allow_blank=True)
    base_url = serializers.URLField(required=False, allow_blank=True, help_text="OpenAI-compatible endpoint")
    candidates_per_round = serializers.IntegerField(required=False, min_value=1, max_value=32)
    max_rounds = serializers.IntegerField(required=False, min_value=1, max_value=20)
    survivors = serializers.IntegerField(required=False, min_value=1, max_value=16)
    target_success = serializers.FloatField(required=False, min_value=0.01, max_value=1.0)
    plateau_points = serializers.FloatField(required=False, min_value=0, max_value=100)
    max_replays = serializers.IntegerField(required=False, min_value=1, max_value=10)
    library_sizes = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=django_settings.ASPIRE["MAX_TASKS_PER_EXPERIMENT"]),
        required=False,
        default=list,
        max_length=50,
    )
    debug_seeds = SeedsField(required=False, help_text="Replace every task's debug seeds")
    heldout_seeds = SeedsField(required=False, help_text="Replace every task's held-out seeds")
    wall_seconds = serializers.FloatField(required=False, min_value=1, max_value=300)
    perception_mode = serializers.ChoiceField(
        choices=PERCEPTION_MODES,
        required=False,
        help_text="realistic (default) or oracle (the simulator's exact segmentation and depth; not comparable)",
    )
    step_budget = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=NO_STEP_BUDGET,
        max_value=MAX_STEP_BUDGET,
        help_text="Control steps (20 Hz) per episode; leave out for each task's benchmark budget; 0 for none",
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
    record = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Keep the language-model agent's requests and responses in full (API keys stripped) for the "
        "conversation page and its JSON download (default false: a short log of each turn only)",
    )
    team = serializers.CharField(required=False, allow_blank=True)
