"""The admin: every skill (edit proposed ones, validate, retire) and the review queue of validated
skills with their evidence, highlighted sketch and diff against the parent version; approve/reject one
at a time or in bulk. Thin: every decision goes through skills.lifecycle."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import lifecycle
from .content import SkillDraft, SkillInputError
from .evidence import evidence_rows
from .highlight import code_html, diff_html
from .models import Skill, SkillRetrieval, SkillReview, SkillStateError, SkillUse, SkillValidation
from .rendering import markdown_html

CONTENT_FIELDS = (
    "title",
    "description",
    "kind",
    "symptom",
    "trace_signals",
    "when_to_apply",
    "when_not_to_apply",
    "repair_strategy",
    "code_sketch",
    "placeholders",
    "notes",
    "embodiment",
    "benchmark",
    "task_keys",
    "validated_context",
    "change_note",
    "guidance",
)
EVIDENCE_INPUT_FIELDS = ("source_task", "before_program", "after_program", "claimed_seeds", "control_seeds")
REVIEW_DISPLAY = (
    "status_line",
    "evidence",
    "sketch",
    "guidance_html",
    "parent_diff",
    "placeholders_table",
    "provenance_links",
)


class SkillAdminForm(forms.ModelForm):
    """Edits of a proposed skill pass the same rules as a proposal (SkillDraft.cleaned); an imported
    skill may keep a blank kind until it is approved."""

    class Meta:
        model = Skill
        fields = "__all__"

    def _seeds(self, key):
        try:
            return lifecycle.parse_seed_list(self.cleaned_data.get(key), key)
        except SkillInputError as exc:
            raise forms.ValidationError(exc.args[0]) from None

    def clean_claimed_seeds(self):
        return self._seeds("claimed_seeds")

    def clean_control_seeds(self):
        return self._seeds("control_seeds")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        draft = SkillDraft(
            name=self.instance.name,
            **{k: data[k] for k in CONTENT_FIELDS if k in data},
            **{k: getattr(self.instance, k) for k in CONTENT_FIELDS if k not in data},
        )
        try:
            clean = draft.cleaned(allow_blank_kind=self.instance.provenance == Skill.Provenance.IMPORT)
        except SkillInputError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.args[0])
            return data
        for key in CONTENT_FIELDS:
            if key in data:
                data[key] = getattr(clean, key)
        return data


def _decide(modeladmin, request, queryset: QuerySet, verb, label: str) -> None:
    done, refused = [], []
    for skill in queryset:
        try:
            verb(skill, user=request.user)
            done.append(str(skill))
        except SkillStateError as exc:
            refused.append(str(exc))
    if done:
        modeladmin.message_user(request, f"{label} {len(done)}: {', '.join(done)}", messages.SUCCESS)
    for reason in refused:
        modeladmin.message_user(request, reason, messages.WARNING)


@admin.action(description="Approve selected validated skills", permissions=["change"])
def approve_selected(modeladmin, request, queryset):
    _decide(modeladmin, request, queryset, lifecycle.approve_skill, "approved")


@admin.action(description="Reject selected skills", permissions=["change"])
def reject_selected(modeladmin, request, queryset):
    _decide(modeladmin, request, queryset, lifecycle.reject_skill, "rejected")


@admin.action(description="Retire selected approved skills", permissions=["change"])
def retire_selected(modeladmin, request, queryset):
    _decide(modeladmin, request, queryset, lifecycle.retire_skill, "retired")


@admin.action(description="Validate selected proposed skills (re-execute on the worker)", permissions=["change"])
def validate_selected(modeladmin, request, queryset):
    _decide(modeladmin, request, queryset, lambda skill, user: lifecycle.request_validation(skill), "queued")


class _SkillDisplay:
    """Read-only HTML blocks shared by both admins."""

    class Media:
        css = {"all": ["skills/review.css"]}

    @admin.display(description="status")
    def status_line(self, obj: Skill):
        line = format_html(
            '<strong class="status status-skill-{}">{}</strong> — {}',
            obj.status,
            obj.status,
            obj.status_reason or "no reason recorded",
        )
        if obj.kind or obj.status not in (Skill.Status.PROPOSED, Skill.Status.VALIDATED):
            return line
        url = reverse("admin:skills_skill_change", args=[obj.pk])
        return format_html(
            '{}<br><strong>No kind yet</strong>: the imported file does not say it; <a href="{}">set one</a> '
            "before approving.",
            line,
            url,
        )

    @admin.display(description="evidence")
    def evidence(self, obj: Skill):
        validations = list(obj.validations.select_related("run")[:3])
        if not validations:
            return "no re-execution yet"
        return mark_safe(
            "".join(
                render_to_string("skills/_evidence.html", {"validation": v, "rows": evidence_rows(v)})
                for v in validations
            )
        )

    @admin.display(description="code sketch")
    def sketch(self, obj: Skill):
        return code_html(obj.code_sketch) if obj.code_sketch else "none"

    @admin.display(description="guidance (imported, rendered)")
    def guidance_html(self, obj: Skill):
        return (
            format_html('<div class="skill-guidance">{}</div>', markdown_html(obj.guidance)) if obj.guidance else "none"
        )

    @admin.display(description="diff against the parent version")
    def parent_diff(self, obj: Skill):
        if obj.parent is None:
            return "first version"
        link = reverse("skills:detail", args=[obj.parent_id])
        return format_html(
            '<p>parent: <a href="{}">{}</a> ({}). {}</p>{}',
            link,
            obj.parent,
            obj.parent.status,
            obj.change_note,
            diff_html(obj.parent, obj),
        )

    @admin.display(description="placeholders")
    def placeholders_table(self, obj: Skill):
        if not obj.placeholders:
            return "none"
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            ((name, json.dumps(spec.get("default")), spec.get("doc", "")) for name, spec in obj.placeholders.items()),
        )
        return format_html("<table><tr><th>name</th><th>default</th><th>meaning</th></tr>{}</table>", rows)

    @admin.display(description="provenance")
    def provenance_links(self, obj: Skill):
        parts = [
            format_html("{} ({})", obj.get_provenance_display(), obj.proposed_by)
            if obj.proposed_by
            else format_html("{}", obj.get_provenance_display())
        ]
        if obj.source_task_id:
            parts.append(format_html("task {}", obj.source_task))
        if obj.source_run_id:
            url = reverse("runs:detail", args=[obj.source_run_id])
            parts.append(format_html('<a href="{}">run #{}</a>', url, obj.source_run_id))
        for episode in obj.source_episodes.all()[:20]:
            url = reverse("runs:episode", args=[episode.pk])
            parts.append(format_html('<a href="{}">episode #{}</a>', url, episode.pk))
        return mark_safe(" · ".join(parts))

    @admin.display(description="before → after")
    def pass_rates(self, obj: Skill):
        if obj.pass_rate_after is None:
            return "–"
        return f"{obj.pass_rate_before:.0%} → {obj.pass_rate_after:.0%}"


@admin.register(Skill)
class SkillAdmin(_SkillDisplay, admin.ModelAdmin):
    form = SkillAdminForm
    list_display = (
        "name",
        "version",
        "kind",
        "status",
        "embodiment",
        "pass_rates",
        "usage_count",
        "win_count",
        "provenance",
        "created_at",
    )
    list_filter = ("status", "kind", "provenance", "embodiment", "rejection_stage")
    search_fields = ("name", "title", "description", "symptom")
    actions = [validate_selected, approve_selected, reject_selected, retire_selected]
    raw_id_fields = ("source_task", "source_run", "source_candidate", "parent")
    filter_horizontal = ()
    fieldsets = (
        (None, {"fields": ("name", "version", "status_line") + REVIEW_DISPLAY[1:]}),
        ("Content", {"fields": CONTENT_FIELDS}),
        ("Re-execution evidence to validate", {"fields": EVIDENCE_INPUT_FIELDS}),
        (
            "Record",
            {
                "fields": (
                    "seeds_flipped",
                    "pass_rate_before",
                    "pass_rate_after",
                    "usage_count",
                    "win_count",
                    "parent",
                    "reviewed_by",
                    "reviewed_at",
                    "policy_issues",
                )
            },
        ),
    )

    def has_add_permission(self, request):
        # Skills enter through admission: agents' proposals, imports (the skills pages) and the seed library.
        return False

    def get_readonly_fields(self, request, obj=None):
        always = (
            "name",
            "version",
            "seeds_flipped",
            "pass_rate_before",
            "pass_rate_after",
            "usage_count",
            "win_count",
            "parent",
            "reviewed_by",
            "reviewed_at",
            "policy_issues",
        ) + REVIEW_DISPLAY
        if obj is not None and obj.status == Skill.Status.PROPOSED:
            return always
        # Content that was validated or reviewed is frozen: a change is a new version, re-validated. The
        # one exception: a validated import whose file did not say its kind gets one before approval.
        frozen = CONTENT_FIELDS
        if obj is not None and obj.status == Skill.Status.VALIDATED and not obj.kind:
            frozen = tuple(f for f in CONTENT_FIELDS if f != "kind")
        return always + frozen + EVIDENCE_INPUT_FIELDS


class ReviewStageFilter(admin.SimpleListFilter):
    """Which open skills the queue lists: validated ones awaiting a person's approval (the default),
    proposed ones still awaiting validation, or both."""

    title = "stage"
    parameter_name = "stage"
    STAGES = {
        "approval": ((Skill.Status.VALIDATED,), "awaiting approval (validated)"),
        "validation": ((Skill.Status.PROPOSED,), "awaiting validation (proposed)"),
        "open": ((Skill.Status.PROPOSED, Skill.Status.VALIDATED), "all open (proposed + validated)"),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (_, label) in self.STAGES.items()]

    def value(self):
        return super().value() or "approval"

    def choices(self, changelist):
        for key, label in self.lookups(None, None):
            yield {
                "selected": self.value() == key,
                "query_string": changelist.get_query_string({self.parameter_name: key}),
                "display": label,
            }

    def queryset(self, request, queryset):
        statuses = self.STAGES.get(self.value(), self.STAGES["approval"])[0]
        return queryset.filter(status__in=statuses)


def review_counts() -> dict[str, int]:
    """Open skills per review stage, for the queue's header and the admin index."""
    from django.db.models import Count

    found = dict(
        Skill.objects.filter(status__in=(Skill.Status.PROPOSED, Skill.Status.VALIDATED))
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {"approval": found.get(Skill.Status.VALIDATED, 0), "validation": found.get(Skill.Status.PROPOSED, 0)}


@admin.register(SkillReview)
class SkillReviewAdmin(_SkillDisplay, admin.ModelAdmin):
    """The review queue: validated skills waiting for a person's approval by default; the stage filter
    also lists proposed skills still awaiting validation. The header counts both."""

    change_form_template = "admin/skills/skillreview/change_form.html"
    change_list_template = "admin/skills/skillreview/change_list.html"
    list_display = (
        "name",
        "version",
        "status",
        "kind",
        "embodiment",
        "pass_rates",
        "flipped",
        "source_task",
        "parent",
        "created_at",
    )
    list_filter = (ReviewStageFilter, "kind", "embodiment")
    search_fields = ("name", "title", "description")
    actions = [approve_selected, reject_selected]
    fields = (
        "name",
        "version",
        "kind",
        "title",
        "description",
        "status_line",
        "evidence",
        "sketch",
        "placeholders_table",
        "parent_diff",
        "symptom",
        "when_to_apply",
        "when_not_to_apply",
        "repair_strategy",
        "guidance_html",
        "embodiment",
        "benchmark",
        "task_keys",
        "validated_context",
        "provenance_links",
    )

    def get_queryset(self, request):
        open_skills = super().get_queryset(request).filter(status__in=(Skill.Status.PROPOSED, Skill.Status.VALIDATED))
        return open_skills.select_related("parent", "source_task")

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "review_counts": review_counts()})

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="seeds flipped")
    def flipped(self, obj: Skill):
        return ", ".join(str(s) for s in obj.seeds_flipped) or "–"

    def get_urls(self):
        decide = self.admin_site.admin_view(self.decide_view)
        return [path("<int:pk>/decide/", decide, name="skills_skillreview_decide")] + super().get_urls()

    def decide_view(self, request, pk):
        """POST approve or reject (with a note) from the review page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        skill = get_object_or_404(Skill, pk=pk)
        if not self.has_change_permission(request, skill):
            raise PermissionDenied
        decision = request.POST.get("decision")
        verbs = {"approve": (lifecycle.approve_skill, "approved"), "reject": (lifecycle.reject_skill, "rejected")}
        if decision not in verbs:
            self.message_user(request, "choose approve or reject", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:skills_skillreview_change", args=[pk]))
        verb, label = verbs[decision]
        try:
            verb(skill, user=request.user, note=request.POST.get("note", "")[:2000])
        except SkillStateError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, f"{label} {skill}", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:skills_skillreview_changelist"))


@admin.register(SkillValidation)
class SkillValidationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "skill",
        "outcome",
        "n_seeds",
        "n_before_success",
        "n_after_success",
        "n_parent_success",
        "created_at",
    )
    list_filter = ("outcome",)
    readonly_fields = [f.name for f in SkillValidation._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(SkillRetrieval)
class SkillRetrievalAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "instruction", "embodiment", "k", "latency_ms", "run", "agent_call_id")
    readonly_fields = [f.name for f in SkillRetrieval._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(SkillUse)
class SkillUseAdmin(admin.ModelAdmin):
    list_display = ("id", "skill", "outcome", "run", "candidate", "agent_call_id", "created_at")
    list_filter = ("outcome",)
    readonly_fields = [f.name for f in SkillUse._meta.fields]

    def has_add_permission(self, request):
        return False
