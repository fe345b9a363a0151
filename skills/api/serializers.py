from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Skill, SkillValidation


class SkillFilterSerializer(serializers.Serializer):
    """Query parameters of the skill list."""

    status = serializers.ChoiceField(choices=Skill.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=Skill.Kind.choices, required=False)
    embodiment = serializers.CharField(max_length=50, required=False, help_text="Also matches skills for any robot")
    q = serializers.CharField(max_length=200, required=False, help_text="Words in name, title, description or symptom")


class SkillSummarySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Skill
        fields = [
            "id",
            "name",
            "version",
            "title",
            "description",
            "kind",
            "status",
            "embodiment",
            "benchmark",
            "task_keys",
            "pass_rate_before",
            "pass_rate_after",
            "seeds_flipped",
            "usage_count",
            "win_count",
            "provenance",
            "parent",
            "created_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_url(self, obj) -> str:
        return reverse("skills:detail", args=[obj.pk])


class ValidationSerializer(serializers.ModelSerializer):
    perception_mode = serializers.CharField(
        source="run.perception_mode",
        read_only=True,
        default=None,
        help_text="The perception mode the admission episodes ran with (realistic or oracle)",
    )

    class Meta:
        model = SkillValidation
        fields = [
            "id",
            "outcome",
            "task",
            "run",
            "perception_mode",
            "claimed_seeds",
            "control_seeds",
            "results",
            "flipped",
            "broken",
            "n_seeds",
            "n_before_success",
            "n_after_success",
            "n_parent_success",
            "min_flipped",
            "replacement_margin",
            "reason",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class SkillDetailSerializer(SkillSummarySerializer):
    validations = ValidationSerializer(many=True, read_only=True)
    versions = serializers.SerializerMethodField()

    class Meta(SkillSummarySerializer.Meta):
        fields = SkillSummarySerializer.Meta.fields + [
            "symptom",
            "trace_signals",
            "when_to_apply",
            "when_not_to_apply",
            "repair_strategy",
            "code_sketch",
            "placeholders",
            "notes",
            "validated_context",
            "status_reason",
            "rejection_stage",
            "policy_issues",
            "change_note",
            "source_task",
            "source_run",
            "source_candidate",
            "source_episodes",
            "reviewed_at",
            "before_program",
            "after_program",
            "claimed_seeds",
            "control_seeds",
            "validations",
            "versions",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_versions(self, obj) -> list:
        return [
            {"id": s.pk, "version": s.version, "status": s.status, "change_note": s.change_note}
            for s in Skill.objects.filter(name=obj.name).order_by("-version")
        ]


class ReviewSerializer(serializers.Serializer):
    note = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default="", help_text="Kept as the skill's status reason"
    )
