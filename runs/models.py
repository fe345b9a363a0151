"""Tasks, runs, candidate programs, episodes and their traces (DESIGN sections 1 and 4)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse

from worker.robot.status import CallStatus, EpisodeStatus, choices
from worker.sandbox.containment import PROCESS_LABEL


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


#: The token and cost counters of UsageTotals rows and AgentCall.
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")


class UsageTotals(models.Model):
    """Token and cost totals of agent calls (None until an agent is involved), summed by the experiments'
    workbench (experiments.workbench.add_usage); AgentCall rows hold the per-call figures."""

    input_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    output_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    cache_read_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    cache_write_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True


class Owned(models.Model):
    """Who is working on a row now, for the reconciler (runs.reconcile): ``worker`` is the owning
    process's WorkerHeartbeat.name ("" = no owner) and ``heartbeat_at`` the last time that process said
    it still holds the row (runs.heartbeat refreshes it every HEARTBEAT_SECONDS while the work runs)."""

    worker = models.CharField(max_length=200, blank=True, help_text='WorkerHeartbeat.name of the owner; "" = none')
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="The owner's last heartbeat on this row")

    class Meta:
        abstract = True


class Run(UsageTotals, Owned):
    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        RUNNING = "RUNNING"
        FINISHED = "FINISHED"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"

    class Kind(models.TextChoices):
        PROGRAM = "program", "Run a program"
        FIX_LOOP = "fix_loop", "Fix loop"
        SEARCH = "search", "Evolutionary search"
        ZERO_SHOT = "zero_shot", "Zero-shot transfer"
        SCALING = "scaling", "Library-size scaling"

    class PerceptionMode(models.TextChoices):
        REALISTIC = "realistic", "realistic (a segmentation model's errors, noisy depth)"
        ORACLE = "oracle", "oracle (the simulator's exact segmentation and depth)"

    task = models.ForeignKey(
        Task,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
        help_text="The task of a program run or single-task experiment; experiments over "
        "several tasks have one actor per task instead",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="Every member of the team can see the run",
    )
    kind = models.CharField(max_length=30, choices=Kind.choices, default=Kind.PROGRAM)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    source = models.CharField(max_length=20, default="web", help_text="web | cli | api")
    seeds = models.JSONField(default=list)
    settings = models.JSONField(
        default=dict,
        help_text="Engine settings: wall_seconds, memory_mb, trace, keyframes, perception_mode, depth_noise, "
        "step_budget (null: the task's benchmark budget)",
    )
    perception_mode = models.CharField(
        max_length=20,
        choices=PerceptionMode.choices,
        default=PerceptionMode.REALISTIC,
        db_index=True,
        help_text="realistic: segmentation with a model's errors and noisy depth; oracle: the simulator's exact "
        "segmentation and depth (an upper bound, not comparable)",
    )
    success_rate = models.FloatField(null=True, blank=True, help_text="Fraction of finished episodes that succeeded")
    n_episodes = models.PositiveIntegerField(default=0)
    n_success = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    event_seq = models.PositiveBigIntegerField(
        default=0, help_text="Bumped in the same transaction as every run-level change (see runs.live)"
    )

    class Meta(UsageTotals.Meta):
        abstract = False
        ordering = ["-created_at"]

    def __str__(self):
        return f"Run {self.pk} on {self.scope}"

    @property
    def scope(self) -> str:
        """What the run is about: its task's key, or a count of its actors' tasks."""
        if self.task_id:
            return self.task.key
        keys = sorted({a.task.key for a in self.actors.select_related("task")})
        if not keys:
            return "no tasks"
        return keys[0] if len(keys) == 1 else f"{len(keys)} tasks ({keys[0]}, ...)"

    @property
    def is_experiment(self) -> bool:
        return self.kind != self.Kind.PROGRAM

    def get_absolute_url(self):
        return reverse("runs:detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def uncontained_episodes(self) -> int:
        """Episodes of this run whose program ran without OS containment (ASPIRE_SANDBOX=process)."""
        return self.episodes.filter(sandbox=PROCESS_LABEL).count()


class Actor(UsageTotals, Owned):
    """One task's search inside an experiment run: its rounds of candidates and its final numbers."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        PROPOSING = "PROPOSING"
        #: an ``mcp`` actor's round is briefed (``agent_brief``) and waits for the external client's
        #: submit_candidates (experiments.external); no process owns it meanwhile
        AWAITING = "AWAITING", "Awaiting its MCP client"
        EVALUATING = "EVALUATING"
        HELDOUT = "HELDOUT", "Held-out evaluation"
        FINISHED = "FINISHED"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"

    TERMINAL = (Status.FINISHED, Status.FAILED, Status.CANCELLED)

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="actors")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="actors")
    library_size = models.IntegerField(
        null=True, blank=True, help_text="Scaling runs: skills from this many source tasks"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    settings = models.JSONField(default=dict, help_text="worker.search.core.SearchSettings")
    current_round = models.IntegerField(default=-1)
    stop_reason = models.CharField(max_length=40, blank=True)
    best = models.ForeignKey("Candidate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_debug_rate = models.FloatField(null=True, blank=True)
    final_debug_rate = models.FloatField(null=True, blank=True)
    heldout_rate = models.FloatField(null=True, blank=True)
    proposed_skills = models.JSONField(default=list, help_text="Skill proposals waiting for the coordinator")
    agent_brief = models.JSONField(
        default=dict,
        blank=True,
        help_text="mcp actors: the round brief an external MCP client works on (system prompt, round message, "
        "budgets) and what the client did so far this round (tool calls, experiment episodes used)",
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(UsageTotals.Meta):
        abstract = False
        ordering = ["run", "task__key", "library_size"]

    def __str__(self):
        size = f" with {self.library_size} source tasks" if self.library_size is not None else ""
        return f"{self.task.key}{size} in run {self.run_id}"

    def get_absolute_url(self):
        return reverse("experiments:actor", args=[self.pk])

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    def search_candidates(self):
        """This actor's round candidates: its agent's quick experiments (origin "experiment") left out."""
        return self.candidates.exclude(origin="experiment")

    @property
    def wall_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Candidate(UsageTotals):
    """One program evaluated in a run (a search round has several)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="candidates")
    actor = models.ForeignKey(Actor, null=True, blank=True, on_delete=models.CASCADE, related_name="candidates")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The program this one was derived from",
    )
    params = models.JSONField(default=dict, blank=True, help_text="The agent's knobs and the repair rule, if any")
    agent_call = models.ForeignKey(
        "AgentCall", null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates"
    )
    index = models.PositiveIntegerField(default=0)
    round = models.PositiveIntegerField(default=0)
    label = models.CharField(max_length=200, blank=True)
    hypothesis = models.TextField(blank=True)
    program = models.TextField()
    program_hash = models.CharField(max_length=64, db_index=True)
    origin = models.CharField(max_length=30, default="pasted", help_text="starter | pasted | file | agent")
    success_rate = models.FloatField(null=True, blank=True, help_text="On the debug (or the run's own) seeds")
    n_episodes = models.PositiveIntegerField(default=0)
    n_success = models.PositiveIntegerField(default=0)
    heldout_rate = models.FloatField(
        null=True, blank=True, help_text="Experiments: the selected program on held-out seeds"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(UsageTotals.Meta):
        abstract = False
        ordering = ["run", "round", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "round", "index"], condition=Q(actor__isnull=True), name="candidate_unique_slot"
            ),
            models.UniqueConstraint(
                fields=["actor", "round", "index"], condition=Q(actor__isnull=False), name="actor_candidate_unique_slot"
            ),
        ]

    def __str__(self):
        return self.label or f"candidate {self.index} of run {self.run_id}"

    def refresh_stats(self) -> None:
        """Recompute success counts from finished episodes: this candidate's (a search candidate's rate
        is on its debug seeds, its held-out rate apart) and its run's episode counters (episodes that hold
        no result, running or cancelled, are left out; held-out ones never mix with the others). A program run's
        success rate is over its episodes; an experiment's is set by its coordinator at the end."""

        def counts(episodes):
            agg = episodes.exclude(status__in=Episode.NO_RESULT).aggregate(
                n=Count("id"), ok=Count("id", filter=Q(success=True))
            )
            return {
                "n_episodes": agg["n"],
                "n_success": agg["ok"],
                "success_rate": agg["ok"] / agg["n"] if agg["n"] else None,
            }

        # The rate is never pooled across splits: held-out episodes (of an experiment's actor, or of a
        # plain run given held-out seeds) count apart, in heldout_rate.
        held_out = self.episodes.filter(split=Episode.Split.HELDOUT)
        if self.actor_id is None and not held_out.exists():
            Candidate.objects.filter(pk=self.pk).update(**counts(self.episodes.all()))
        else:
            held = counts(held_out)
            Candidate.objects.filter(pk=self.pk).update(
                heldout_rate=held["success_rate"], **counts(self.episodes.exclude(split=Episode.Split.HELDOUT))
            )
        run_counts = counts(Episode.objects.filter(run_id=self.run_id))
        if Run.objects.filter(pk=self.run_id, kind=Run.Kind.PROGRAM).exists():
            Run.objects.filter(pk=self.run_id).update(**run_counts)
        else:
            run_counts.pop("success_rate")
            Run.objects.filter(pk=self.run_id).update(**run_counts)


class Episode(Owned):
    """One execution of a candidate on one seed. ``status`` is the program's exit reason; RUNNING while a
    worker runs it (or waits to re-run it: ``worker`` empty), CANCELLED when its run was cancelled first.

    Claimed by a conditional write (runs.work.claim_episode): one row per (candidate, split, seed), owned
    by one live worker at a time; ``attempt`` counts the times it was (re)started after its owner died."""

    class Split(models.TextChoices):
        DEBUG = "debug"
        HELDOUT = "heldout"
        CUSTOM = "custom"

    RUNNING = EpisodeStatus.RUNNING
    CANCELLED = EpisodeStatus.CANCELLED
    #: Statuses of an episode that holds no result (it runs, or it was cancelled before it ended):
    #: success counts and "is this seed evaluated" leave them out.
    NO_RESULT = (EpisodeStatus.RUNNING, EpisodeStatus.CANCELLED)

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="episodes")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="episodes")
    seed = models.PositiveBigIntegerField(help_text="0 .. 2**32 - 1 (the simulators' seed range)")
    attempt = models.PositiveIntegerField(default=1, help_text="1, then +1 each time a dead owner's run is retaken")
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.CUSTOM)
    status = models.CharField(max_length=30, choices=choices(EpisodeStatus), default=RUNNING, db_index=True)
    success = models.BooleanField(null=True)
    reward = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    error_line = models.PositiveIntegerField(default=0)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    duration_s = models.FloatField(default=0.0)
    sim_time = models.FloatField(default=0.0)
    n_calls = models.PositiveIntegerField(default=0)
    control_steps = models.PositiveIntegerField(default=0, help_text="Simulator control steps the episode used")
    step_budget = models.PositiveIntegerField(
        null=True, blank=True, help_text="The control-step budget it ran under (null: none, e.g. before budgets)"
    )
    api_profile = models.CharField(
        max_length=20,
        blank=True,
        help_text='The API calling conventions the program ran under: "native" or "published" (the CaP-X / '
        "ASPIRE reduced API's; worker.robot.profiles)",
    )
    api_profile_reason = models.CharField(max_length=400, blank=True, help_text="Why that profile (auto or set)")
    program_hash = models.CharField(max_length=64, blank=True)
    sandbox = models.CharField(
        max_length=40,
        blank=True,
        help_text='How the program was isolated: "bwrap+seccomp" (contained), "process (not contained)" '
        "(ASPIRE_SANDBOX=process), or empty when no program process ran",
    )
    recording = models.FileField(
        max_length=300,
        blank=True,
        help_text="The episode's video (the run setting recording): an H.264 MP4 in the media storage",
    )
    recording_index = models.JSONField(
        default=dict,
        blank=True,
        help_text="worker.robot.recording index: fps, each frame's sim time, each call's [seq, t_start, t_end] "
        "in video seconds",
    )
    scene3d = models.FileField(
        max_length=300,
        blank=True,
        help_text="The episode's 3D view (worker.robot.scene3d): point clouds, masks' points, grasps, targets, "
        "planned and executed gripper paths, joint state over time; gzip'd JSON in the media storage",
    )
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

    @property
    def contained(self) -> bool:
        """False when the program ran without OS containment (``ASPIRE_SANDBOX=process``)."""
        return self.sandbox != PROCESS_LABEL


class PrimitiveCall(models.Model):
    """The trace record of one robot API call (DESIGN section 4)."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="calls")
    seq = models.PositiveIntegerField()
    primitive = models.CharField(max_length=100, db_index=True)
    args = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=30, choices=choices(CallStatus), db_index=True)
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
    """An image the engine wrote into the media storage (``STORAGES["default"]``, runs.storage): a camera
    frame or an overlay. ``image.name`` is the storage's name for it."""

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


class AgentCall(models.Model):
    """One agent conversation (one round's proposals, or one skill write-up) and what it cost."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="agent_calls")
    actor = models.ForeignKey(Actor, null=True, blank=True, on_delete=models.CASCADE, related_name="agent_calls")
    round = models.IntegerField(default=0)
    backend = models.CharField(max_length=20, help_text="offline | claude | openai | mcp")
    model = models.CharField(max_length=100, blank=True)
    purpose = models.CharField(max_length=30, default="propose")
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)
    turns = models.PositiveIntegerField(default=0)
    duration_s = models.FloatField(default=0.0)
    tool_calls = models.JSONField(default=list)
    retrieved_skills = models.JSONField(default=list, help_text="[{id, name, score}] offered to the agent")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "created_at"]

    def __str__(self):
        return f"{self.backend} {self.purpose} round {self.round} of run {self.run_id}"


class WorkerHeartbeat(models.Model):
    """One worker process that says it is alive (runs.heartbeat beats every HEARTBEAT_SECONDS); a row
    not beaten for ASPIRE["OWNER_TIMEOUT_SECONDS"] is a dead worker, whose work the reconciler retakes."""

    name = models.CharField(max_length=200, unique=True, help_text='"aspire@<host>:<pid>"')
    host = models.CharField(max_length=200)
    pid = models.IntegerField()
    queues = models.JSONField(default=list, help_text="The Celery queues it consumes ([] when not a worker)")
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)
    busy_with = models.CharField(max_length=200, blank=True, help_text='e.g. "episode 123"; "" when idle')

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Outbox(models.Model):
    """A task message written in the transaction that makes its work (runs.outbox.send), published to the
    broker after that transaction commits, and again by the relay while unsent: a launch is durably
    queued even when the broker is away. ``broker_id`` is the Redis ``run_id`` (INFO server) of the
    broker it went to: a restarted Redis has another, so the reconciler knows its queue was lost."""

    task_name = models.CharField(max_length=100)
    args = models.JSONField(default=list)
    key = models.CharField(max_length=255, db_index=True, help_text="task_name and its JSON args: the work's identity")
    queue = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    picked_at = models.DateTimeField(null=True, blank=True, help_text="When a worker started a task of this key")
    attempts = models.PositiveIntegerField(default=0, help_text="Publication attempts")
    last_error = models.TextField(blank=True)
    broker_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "outbox"

    def __str__(self):
        state = f"sent {self.sent_at:%Y-%m-%d %H:%M:%S}" if self.sent_at else "unsent"
        return f"{self.task_name}{tuple(self.args)} {state}"


class AgentTurn(models.Model):
    """One model turn of a language-model agent's conversation (experiments.conversations records it):
    what the model called and a short result of each tool (always), its tokens and cost, and, when the
    experiment's ``record`` setting is on, the messages sent and the response in full with secrets
    stripped. A round's turns point at the round's AgentCall once its usage is recorded."""

    actor = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="agent_turns")
    agent_call = models.ForeignKey(
        AgentCall,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="agent_turns",
        help_text="The round's agent call (set when the round's usage is recorded)",
    )
    round = models.IntegerField(default=0)
    turn = models.PositiveIntegerField(help_text="1, 2, ... within the round's conversation")
    backend = models.CharField(max_length=20, help_text="claude | openai")
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.FloatField(default=0.0)
    text = models.TextField(blank=True, help_text="The model's own text this turn (at most 2000 characters)")
    tools = models.JSONField(
        default=list,
        help_text='[{"name", "arguments" (short summary), "text" (result, at most 2000 characters), "is_error", '
        '"keyframes" (Keyframe ids of this actor)}]',
    )
    sent = models.JSONField(
        null=True, blank=True, help_text="Messages added since the previous request (record on only; secrets stripped)"
    )
    response = models.JSONField(
        null=True,
        blank=True,
        help_text="The model's response as the SDK returned it (record on only; secrets stripped)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["actor", "round", "turn"]
        constraints = [models.UniqueConstraint(fields=["actor", "round", "turn"], name="agent_turn_unique")]

    def __str__(self):
        return f"turn {self.turn} of round {self.round} of actor {self.actor_id}"

    @property
    def recorded(self) -> bool:
        """Whether the full request and response were kept (the experiment's ``record`` setting)."""
        return self.sent is not None or self.response is not None
