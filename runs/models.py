"""Tasks, runs, candidate programs, episodes and their traces (DESIGN sections 1 and 4)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse


class Task(models.Model):
    """A benchmark task from the catalog (worker.sim.catalog), mirrored here so it can be browsed."""

    key = models.CharField(max_length=200, unique=True, help_text='"benchmark:task", e.g. robosuite:Lift')
    benchmark = models.CharField(max_length=50)
    suite = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    instruction = models.TextField()
    cameras = models.JSONField(default=list)
    arms = models.PositiveSmallIntegerField(default=1)
    debug_seeds = models.JSONField(default=list)
    heldout_seeds = models.JSONField(default=list)
    starter_program = models.TextField(blank=True, help_text="Built-in camera-only program, if any")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["benchmark", "suite", "name"]

    def __str__(self):
        return self.key


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        RUNNING = "RUNNING"
        FINISHED = "FINISHED"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"

    class Kind(models.TextChoices):
        PROGRAM = "program", "Run a program"

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="runs")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs",
                             help_text="Every member of the team can see the run")
    kind = models.CharField(max_length=30, choices=Kind.choices, default=Kind.PROGRAM)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    source = models.CharField(max_length=20, default="web", help_text="web | cli | api")
    seeds = models.JSONField(default=list)
    settings = models.JSONField(default=dict, help_text="Engine settings: wall_seconds, memory_mb, trace, keyframes")
    success_rate = models.FloatField(null=True, blank=True, help_text="Fraction of finished episodes that succeeded")
    n_episodes = models.PositiveIntegerField(default=0)
    n_success = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    event_seq = models.PositiveBigIntegerField(
        default=0, help_text="Bumped in the same transaction as every run-level change (see runs.live)")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Run {self.pk} on {self.task.key}"

    def get_absolute_url(self):
        return reverse("runs:detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class Candidate(models.Model):
    """One program evaluated in a run (a search round has several)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="candidates")
    index = models.PositiveIntegerField(default=0)
    round = models.PositiveIntegerField(default=0)
    label = models.CharField(max_length=200, blank=True)
    hypothesis = models.TextField(blank=True)
    program = models.TextField()
    program_hash = models.CharField(max_length=64, db_index=True)
    origin = models.CharField(max_length=30, default="pasted", help_text="starter | pasted | file | agent")
    success_rate = models.FloatField(null=True, blank=True)
    n_episodes = models.PositiveIntegerField(default=0)
    n_success = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "round", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "round", "index"], name="candidate_unique_slot")]

    def __str__(self):
        return self.label or f"candidate {self.index} of run {self.run_id}"

    def refresh_stats(self) -> None:
        """Recompute this candidate's and its run's success counts from their finished episodes."""
        def counts(episodes):
            agg = episodes.exclude(status=Episode.RUNNING).aggregate(n=Count("id"), ok=Count("id", filter=Q(success=True)))
            return {"n_episodes": agg["n"], "n_success": agg["ok"], "success_rate": agg["ok"] / agg["n"] if agg["n"] else None}

        Candidate.objects.filter(pk=self.pk).update(**counts(self.episodes.all()))
        Run.objects.filter(pk=self.run_id).update(**counts(Episode.objects.filter(run_id=self.run_id)))


class Episode(models.Model):
    """One execution of a candidate on one seed. ``status`` is the program's exit reason."""

    class Split(models.TextChoices):
        DEBUG = "debug"
        HELDOUT = "heldout"
        CUSTOM = "custom"

    RUNNING = "RUNNING"

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="episodes")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="episodes")
    seed = models.IntegerField()
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.CUSTOM)
    status = models.CharField(max_length=30, default=RUNNING, db_index=True)
    success = models.BooleanField(null=True)
    reward = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    error_line = models.PositiveIntegerField(default=0)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    duration_s = models.FloatField(default=0.0)
    sim_time = models.FloatField(default=0.0)
    n_calls = models.PositiveIntegerField(default=0)
    program_hash = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["candidate", "split", "seed"]
        constraints = [models.UniqueConstraint(fields=["candidate", "split", "seed"], name="episode_unique_seed")]

    def __str__(self):
        return f"seed {self.seed} of {self.candidate}"

    def get_absolute_url(self):
        return reverse("runs:episode", args=[self.pk])

    @property
    def finished(self) -> bool:
        return self.status != self.RUNNING


class PrimitiveCall(models.Model):
    """The trace record of one robot API call (DESIGN section 4)."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="calls")
    seq = models.PositiveIntegerField()
    primitive = models.CharField(max_length=100, db_index=True)
    args = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=30, db_index=True)
    message = models.TextField(blank=True)
    error = models.TextField(blank=True)
    line = models.PositiveIntegerField(default=0, help_text="Program line that made the call")
    stack = models.JSONField(default=list, help_text="[[function, line], ...] of program frames, outermost first")
    started_at = models.DateTimeField()
    duration_ms = models.FloatField()
    sim_time = models.FloatField(default=0.0)
    artifacts = models.JSONField(default=dict)

    class Meta:
        ordering = ["episode", "seq"]
        constraints = [models.UniqueConstraint(fields=["episode", "seq"], name="call_unique_seq")]

    def __str__(self):
        return f"#{self.seq} {self.primitive} {self.status}"


class Keyframe(models.Model):
    """An image written by the engine under MEDIA_ROOT: a camera frame or an overlay."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="keyframes")
    call = models.ForeignKey(PrimitiveCall, null=True, blank=True, on_delete=models.CASCADE, related_name="keyframes")
    kind = models.CharField(max_length=20)
    camera = models.CharField(max_length=100, blank=True)
    label = models.CharField(max_length=100, blank=True)
    image = models.FileField(max_length=300)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["episode", "id"]

    def get_absolute_url(self):
        return reverse("runs:keyframe", args=[self.pk])
