"""The skill library (DESIGN section 5): skills, their admission evidence, retrieval logs and uses.

Life cycle: proposed -> validated -> approved | rejected; approved -> retired. A skill is proposed by
an agent (through the coordinator), imported from a markdown file or shipped as a seed; the
coordinator's admission (``skills.admission``) checks it against the API policy and re-executes the
programs it came from; a person approves or rejects validated skills in the admin. Versions of one
skill share a ``name``; a new version points at its ``parent`` and says what changed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from worker.library.signatures import describe_signals


class SkillStateError(ValueError):
    """A life-cycle change that the skill's current status does not allow."""


class Skill(models.Model):
    class Kind(models.TextChoices):
        LOCALISATION = "localisation", "localisation heuristic"
        PERCEPTION_PROMPT = "perception_prompt", "perception prompt"
        GRASP_CONSTRAINT = "grasp_constraint", "grasp constraint"
        MOTION_PRIMITIVE = "motion_primitive", "motion primitive"
        DEBUGGING_WORKFLOW = "debugging_workflow", "debugging workflow"
        RECOVERY = "recovery", "recovery"

    class Status(models.TextChoices):
        PROPOSED = "proposed"
        VALIDATED = "validated"
        APPROVED = "approved"
        REJECTED = "rejected"
        RETIRED = "retired"

    class Stage(models.TextChoices):
        """Where a rejected skill was turned down."""

        NONE = "", "not rejected"
        POLICY = "policy", "API-policy check"
        VALIDATION = "validation", "re-execution"
        REVIEW = "review", "human review"

    class Provenance(models.TextChoices):
        SEED = "seed", "seed library"
        AGENT = "agent", "proposed by an agent"
        IMPORT = "import", "imported markdown"

    #: status -> the statuses it may move to (approval of a new version retires the old one).
    TRANSITIONS = {
        Status.PROPOSED: {Status.VALIDATED, Status.REJECTED},
        Status.VALIDATED: {Status.APPROVED, Status.REJECTED},
        Status.APPROVED: {Status.RETIRED},
        Status.REJECTED: set(),
        Status.RETIRED: set(),
    }

    # -- what the skill says (DESIGN section 5) ------------------------------------------------------
    name = models.SlugField(
        max_length=100, help_text="Shared by every version of the skill, e.g. cube-top-face-localisation"
    )
    version = models.PositiveIntegerField(default=1)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(help_text="One or two sentences: what the skill does and when it helps")
    kind = models.CharField(
        max_length=30,
        choices=Kind.choices,
        blank=True,
        help_text="Blank only on an imported skill whose file does not say it; set before approval",
    )
    symptom = models.TextField(blank=True, help_text="Failure signature: what goes wrong, as a person reads it")
    trace_signals = models.JSONField(
        default=dict,
        blank=True,
        help_text="Failure signature: the trace signals that reveal it (see skills.signatures)",
    )
    when_to_apply = models.TextField(blank=True)
    when_not_to_apply = models.TextField(blank=True)
    repair_strategy = models.TextField(blank=True, help_text="The technique, in words")
    code_sketch = models.TextField(blank=True, help_text="Robot-API Python with {{PLACEHOLDER}} constants")
    placeholders = models.JSONField(
        default=dict, blank=True, help_text='{"NAME": {"default": value, "doc": "meaning and unit"}}'
    )
    notes = models.TextField(blank=True, help_text="Further sections (markdown) kept from an imported file")
    guidance = models.TextField(
        blank=True,
        help_text="The body (markdown) of an imported file in a free layout, verbatim: shown on the skill's "
        "page and written back by export; the fields above hold only what it states explicitly",
    )

    # -- validated context -------------------------------------------------------------------------
    embodiment = models.CharField(
        max_length=50, blank=True, db_index=True, help_text='Robot model, e.g. "Panda"; blank = any'
    )
    benchmark = models.CharField(max_length=50, blank=True)
    task_keys = models.JSONField(
        default=list, blank=True, help_text='Tasks it was validated on, e.g. ["robosuite:Lift"]'
    )
    validated_context = models.TextField(blank=True)

    # -- proposal and evidence ---------------------------------------------------------------------
    before_program = models.TextField(blank=True, help_text="The candidate program before the repair")
    after_program = models.TextField(blank=True, help_text="The same program with the repair applied")
    claimed_seeds = models.JSONField(
        default=list, blank=True, help_text="Seeds the repair claims to fix (they failed before)"
    )
    control_seeds = models.JSONField(
        default=list, blank=True, help_text="Seeds that passed before (re-checked for breakage)"
    )
    seeds_flipped = models.JSONField(default=list, blank=True)
    pass_rate_before = models.FloatField(null=True, blank=True, help_text="Fraction, on the admission seeds")
    pass_rate_after = models.FloatField(null=True, blank=True, help_text="Fraction, on the admission seeds")

    # -- provenance --------------------------------------------------------------------------------
    provenance = models.CharField(max_length=10, choices=Provenance.choices, default=Provenance.AGENT)
    proposed_by = models.CharField(max_length=200, blank=True, help_text="Agent, user or file that proposed it")
    agent_call_id = models.BigIntegerField(null=True, blank=True, help_text="The agent call that proposed it")
    source_task = models.ForeignKey(
        "runs.Task", null=True, blank=True, on_delete=models.SET_NULL, related_name="skills"
    )
    source_run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="proposed_skills"
    )
    source_candidate = models.ForeignKey(
        "runs.Candidate", null=True, blank=True, on_delete=models.SET_NULL, related_name="proposed_skills"
    )
    source_episodes = models.ManyToManyField("runs.Episode", blank=True, related_name="proposed_skills")
    source_hash = models.CharField(max_length=64, blank=True, help_text="sha256 of the seed or imported file")

    # -- life cycle --------------------------------------------------------------------------------
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PROPOSED, db_index=True)
    status_reason = models.TextField(blank=True, help_text="Why the skill has its status (refusals give the numbers)")
    rejection_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True, default=Stage.NONE)
    policy_issues = models.JSONField(default=list, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    change_note = models.TextField(blank=True, help_text="What this version changes relative to its parent")
    usage_count = models.PositiveIntegerField(default=0)
    win_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped on changes that matter to retrieval (text, status, embodiment), not on usage counters, so
    # the retrieval index is rebuilt only when it has to be.
    content_changed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="skill_unique_version"),
            models.UniqueConstraint(fields=["name"], condition=Q(status="approved"), name="skill_one_approved_version"),
        ]

    def __str__(self):
        return f"{self.name} v{self.version}"

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "content_changed_at" in update_fields:
            self.content_changed_at = timezone.now()
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("skills:detail", args=[self.pk])

    @property
    def label(self) -> str:
        return self.title or self.name.replace("-", " ")

    @property
    def win_rate(self) -> float | None:
        return self.win_count / self.usage_count if self.usage_count else None

    def retrieval_text(self) -> str:
        """The text retrieval indexes: the description (with the title) and the failure signature
        (symptom + trace signals in words)."""
        parts = [self.label + ".", self.description, self.symptom, describe_signals(self.trace_signals)]
        return "\n".join(p.strip() for p in parts if p and p.strip())

    def change_status(self, to: str, *, reason: str = "", stage: str = "", user=None) -> "Skill":
        """Move this skill to status ``to``, atomically; returns the refreshed row.

        The row is locked (select_for_update) so two reviewers, or a reviewer and the admission task,
        cannot both act on the status they read. Raises SkillStateError when the current status does
        not allow the change (the message names both).
        """
        with transaction.atomic():
            row = Skill.objects.select_for_update().get(pk=self.pk)
            if to not in self.TRANSITIONS[row.status]:
                allowed = ", ".join(sorted(self.TRANSITIONS[row.status])) or "nothing"
                raise SkillStateError(f"{row} is {row.status}; it can move to {allowed}, not to {to}")
            row.status = to
            row.status_reason = reason
            row.rejection_stage = stage if to == self.Status.REJECTED else self.Stage.NONE
            if user is not None:
                row.reviewed_by = user
                row.reviewed_at = timezone.now()
            row.content_changed_at = timezone.now()
            row.save(
                update_fields=[
                    "status",
                    "status_reason",
                    "rejection_stage",
                    "reviewed_by",
                    "reviewed_at",
                    "content_changed_at",
                    "updated_at",
                ]
            )
        self.refresh_from_db()
        return self


class SkillReview(Skill):
    """The admin's review queue: validated skills waiting for a person (a proxy of Skill)."""

    class Meta:
        proxy = True
        verbose_name = "skill awaiting review"
        verbose_name_plural = "review queue"


class SkillValidation(models.Model):
    """One admission attempt: both programs re-executed on the claimed and control seeds.

    ``results`` holds one row per seed: ``{"seed", "role": "claimed" | "control",
    "before": {"episode", "success", "status"}, "after": {...}, "parent": {...} | null}`` where
    ``episode`` is a runs.Episode id (the evidence, linkable as a trace page).
    """

    class Outcome(models.TextChoices):
        RUNNING = "running"
        ADMITTED = "admitted"
        REFUSED = "refused"
        ERROR = "error", "engine error"

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="validations")
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RUNNING)
    task = models.ForeignKey("runs.Task", null=True, on_delete=models.SET_NULL, related_name="+")
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="skill_validations"
    )
    claimed_seeds = models.JSONField(default=list)
    control_seeds = models.JSONField(default=list)
    results = models.JSONField(default=list)
    flipped = models.JSONField(default=list, help_text="Claimed seeds that failed before and succeeded after")
    broken = models.JSONField(default=list, help_text="Seeds that succeeded before and failed after")
    n_seeds = models.PositiveIntegerField(default=0)
    n_before_success = models.PositiveIntegerField(default=0)
    n_after_success = models.PositiveIntegerField(default=0)
    n_parent_success = models.PositiveIntegerField(null=True, blank=True)
    min_flipped = models.PositiveIntegerField(default=1, help_text="The rule in force: flips required")
    replacement_margin = models.FloatField(default=0.0, help_text="The rule in force: margin over the parent")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"validation {self.pk} of {self.skill} ({self.outcome})"

    @property
    def pass_rate_before(self) -> float | None:
        return self.n_before_success / self.n_seeds if self.n_seeds else None

    @property
    def pass_rate_after(self) -> float | None:
        return self.n_after_success / self.n_seeds if self.n_seeds else None

    @property
    def pass_rate_parent(self) -> float | None:
        return self.n_parent_success / self.n_seeds if self.n_seeds and self.n_parent_success is not None else None


class SkillEmbedding(models.Model):
    """The cached sentence embedding of a skill's retrieval text (recomputed when the text changes)."""

    skill = models.OneToOneField(Skill, on_delete=models.CASCADE, primary_key=True, related_name="embedding")
    model_name = models.CharField(max_length=200)
    text_hash = models.CharField(max_length=64)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField(help_text="float32 little-endian, L2-normalised")
    updated_at = models.DateTimeField(auto_now=True)


class SkillRetrieval(models.Model):
    """One retrieval: the query, the filters and the ranked skills with their scores."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    instruction = models.TextField(blank=True)
    signals = models.JSONField(default=dict, blank=True, help_text="Failure trace signals of the query, if any")
    query = models.TextField(help_text="The text that was embedded and BM25-scored")
    embodiment = models.CharField(max_length=50, blank=True)
    statuses = models.JSONField(default=list)
    k = models.PositiveIntegerField()
    results = models.JSONField(
        default=list, help_text='[{"skill", "name", "version", "score", "dense", "bm25", "signature"}], best first'
    )
    latency_ms = models.FloatField(default=0.0)
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="skill_retrievals"
    )
    candidate = models.ForeignKey(
        "runs.Candidate", null=True, blank=True, on_delete=models.SET_NULL, related_name="skill_retrievals"
    )
    agent_call_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class SkillUse(models.Model):
    """A skill an agent used for a candidate; settled as a win when that candidate improved success."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        WIN = "win"
        NO_WIN = "no_win", "no win"

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="uses")
    retrieval = models.ForeignKey(SkillRetrieval, null=True, blank=True, on_delete=models.SET_NULL, related_name="uses")
    run = models.ForeignKey("runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="skill_uses")
    candidate = models.ForeignKey(
        "runs.Candidate", null=True, blank=True, on_delete=models.SET_NULL, related_name="skill_uses"
    )
    agent_call_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING, db_index=True)
    baseline_success_rate = models.FloatField(null=True, blank=True)
    success_rate = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
