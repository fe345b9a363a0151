"""Domain verbs of the skill library. Views, the admin, management commands, Celery tasks and the agents'
coordinator call these; agents never write the library directly.

Life cycle: ``propose_skill`` (policy check at once, re-execution queued) -> ``admit_skill`` (in
skills.admission, run by ``validate_skill_task``) -> ``approve_skill`` / ``reject_skill`` by a person ->
``retire_skill``. Use: ``retrieve_skills`` -> ``record_skill_use`` -> ``record_skill_outcome``.
Exchange: ``import_skill_markdown`` / ``export_skill_markdown`` / ``export_library_zip``; the seed
library: ``install_seed_skills``.
"""

from __future__ import annotations

import hashlib
import io
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from runs.models import Candidate, Episode, Run, Task
from runs.services import LaunchError, get_task
from worker.sim import catalog

from . import embeddings, retrieval
from .admission import admit_skill, missing_evidence, reject_for_policy
from .conf import skills_setting
from .drafts import SkillDraft, SkillInputError
from .markdown import SkillFormatError, export_skill_markdown, parse_skill_markdown
from .models import Skill, SkillRetrieval, SkillStateError, SkillUse, SkillValidation
from .policy import check_skill_code, describe_issues
from .signatures import SIGNATURE_KEYS, SignalsError, describe_signals, normalise_observed
from .sketch import placeholder_names

SEED_DIR = Path(__file__).resolve().parent / "seed"
MAX_PROGRAM = 200_000

__all__ = [
    "SkillDraft", "SkillInputError", "SkillFormatError", "SkillStateError", "admit_skill", "approve_skill",
    "export_library_zip", "export_skill_markdown", "import_skill_files", "import_skill_markdown", "install_seed_skills", "propose_skill",
    "record_skill_outcome", "record_skill_use", "reject_skill", "request_validation", "retire_skill",
    "retrieve_skills", "signals_from_episode", "submit_agent_proposal", "LibraryAccess", "record_candidate_skill_use",
]


# -- proposing ----------------------------------------------------------------------------------------
def parse_seed_list(value, field_name: str) -> list[int]:
    """Seeds from "1-3,7" text or a list of integers, sorted and unique; raises SkillInputError."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        try:
            return catalog.parse_seeds(value)
        except ValueError as exc:
            raise SkillInputError(field_name, str(exc)) from None
    try:
        seeds = sorted(set(int(s) for s in value))
    except (TypeError, ValueError):
        raise SkillInputError(field_name, "seeds are non-negative integers") from None
    if any(s < 0 for s in seeds):
        raise SkillInputError(field_name, "seeds are non-negative integers")
    return seeds


def _resolve_task(task) -> Task | None:
    if task is None or isinstance(task, Task):
        return task
    try:
        return get_task(str(task))
    except LaunchError as exc:
        raise SkillInputError("task", str(exc)) from None


def propose_skill(
    draft: SkillDraft,
    *,
    provenance: str = Skill.Provenance.AGENT,
    proposed_by: str = "",
    task: Task | str | None = None,
    run: Run | None = None,
    candidate: Candidate | None = None,
    episodes=(),
    before_program: str = "",
    after_program: str = "",
    claimed_seeds=(),
    control_seeds=(),
    parent: Skill | None = None,
    agent_call_id: int | None = None,
    source_hash: str = "",
    validate: bool = True,
) -> Skill:
    """Add a proposed skill to the library and start its admission.

    ``draft`` is the skill's content (DESIGN section 5); ``before_program``/``after_program`` are the
    candidate before and after the repair, ``task`` (a Task or its key) the task they ran on,
    ``claimed_seeds`` the seeds the repair fixes (they failed before) and ``control_seeds`` seeds that
    passed before (optional: admission picks debug seeds). The version number follows the highest one
    with this name; ``parent`` defaults to the approved skill of the same name, if any.

    The API-policy check runs at once (a failure rejects the skill with the reasons); when the
    proposal carries programs and ``validate`` is true, re-execution is queued on the worker after the
    transaction commits. Raises SkillInputError (nothing is created) on bad input.
    """
    clean = draft.cleaned()
    before_program, after_program = before_program or "", after_program or ""
    claimed, control, task = _clean_evidence(before_program, after_program, claimed_seeds, control_seeds,
                                             _resolve_task(task) or (run.task if run is not None else None))
    if parent is not None and parent.name != clean.name:
        raise SkillInputError("name", f"a new version keeps its parent's name {parent.name!r}")
    if provenance not in Skill.Provenance.values:
        raise SkillInputError("provenance", f"one of {', '.join(Skill.Provenance.values)}")

    for attempt in range(3):
        try:
            with transaction.atomic():
                latest = Skill.objects.filter(name=clean.name).aggregate(v=Max("version"))["v"] or 0
                skill = Skill.objects.create(
                    **clean.as_fields(), version=latest + 1,
                    parent=parent or Skill.objects.filter(name=clean.name, status=Skill.Status.APPROVED).first(),
                    provenance=provenance, proposed_by=proposed_by[:200], agent_call_id=agent_call_id, source_task=task,
                    source_run=run, source_candidate=candidate, source_hash=source_hash, before_program=before_program,
                    after_program=after_program, claimed_seeds=claimed, control_seeds=control,
                    status=Skill.Status.PROPOSED, status_reason="proposed",
                )
                if episodes:
                    skill.source_episodes.set(episodes)
                if reject_for_policy(skill):
                    _after_policy_check(skill, validate)
            break
        except IntegrityError:
            # Two proposals of one name raced for the same version number; take the next one.
            if attempt == 2:
                raise
    skill.refresh_from_db()
    return skill


def _clean_evidence(before_program: str, after_program: str, claimed_seeds, control_seeds, task: Task | None):
    """(claimed seeds, control seeds, task) of a proposal's re-execution evidence; raises SkillInputError."""
    for key, source in (("before_program", before_program), ("after_program", after_program)):
        if len(source) > MAX_PROGRAM:
            raise SkillInputError(key, f"is longer than {MAX_PROGRAM} characters")
    claimed = parse_seed_list(claimed_seeds, "claimed_seeds")
    control = [s for s in parse_seed_list(control_seeds, "control_seeds") if s not in claimed]
    limit = skills_setting("MAX_VALIDATION_SEEDS")
    if len(claimed) + len(control) > limit:
        raise SkillInputError("claimed_seeds", f"admission re-executes at most {limit} seeds")
    given = [bool(before_program.strip()), bool(after_program.strip()), bool(claimed)]
    if any(given) and not (all(given) and task is not None):
        raise SkillInputError(
            "before_program", "re-execution evidence needs all of: the program before the repair, the program after "
            "it, the task and the seeds it claims to fix",
        )
    return claimed, control, task


def _after_policy_check(skill: Skill, validate: bool) -> None:
    missing = missing_evidence(skill)
    if missing:
        reason = "passed the API-policy check; waiting for re-execution evidence (" + ", ".join(missing) + ")"
    elif validate:
        reason = "passed the API-policy check; re-execution queued"
        _queue_validation(skill.pk)
    else:
        reason = "passed the API-policy check; ready to be validated"
    Skill.objects.filter(pk=skill.pk).update(status_reason=reason)


def _queue_validation(skill_id: int) -> None:
    from .tasks import validate_skill_task

    transaction.on_commit(lambda: validate_skill_task.delay(skill_id))


def request_validation(skill: Skill) -> None:
    """Queue admission (re-execution) of a proposed skill; raises SkillStateError when it cannot run."""
    skill.refresh_from_db()
    if skill.status != Skill.Status.PROPOSED:
        raise SkillStateError(f"{skill} is {skill.status}; only a proposed skill is validated")
    missing = missing_evidence(skill)
    if missing:
        raise SkillStateError(f"{skill} cannot be re-executed without {', '.join(missing)}")
    # A running validation whose run is still active is being worked on; one whose run stopped (its
    # task was lost) is resumed by the new task, which keeps the finished episodes.
    if skill.validations.filter(outcome=SkillValidation.Outcome.RUNNING,
                                run__status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).exists():
        raise SkillStateError(f"{skill} is being validated already")
    Skill.objects.filter(pk=skill.pk).update(status_reason="re-execution queued")
    _queue_validation(skill.pk)


# -- review ---------------------------------------------------------------------------------------------
def approve_skill(skill: Skill, *, user=None, note: str = "") -> Skill:
    """A person approves a validated skill; any other approved version of the same name is retired
    (superseded) in the same transaction. Raises SkillStateError unless the skill is validated."""
    with transaction.atomic():
        row = Skill.objects.select_for_update().get(pk=skill.pk)
        if row.status != Skill.Status.VALIDATED:
            raise SkillStateError(f"{row} is {row.status}; only a validated skill can be approved")
        for old in Skill.objects.select_for_update().filter(name=row.name, status=Skill.Status.APPROVED).exclude(pk=row.pk):
            old.change_status(Skill.Status.RETIRED, reason=f"superseded by version {row.version}", user=user)
        who = getattr(user, "username", "") or "a reviewer"
        skill.change_status(Skill.Status.APPROVED, reason=note.strip() or f"approved by {who}", user=user)
    return skill


def reject_skill(skill: Skill, *, user=None, note: str = "") -> Skill:
    """A person rejects a proposed or validated skill. Raises SkillStateError otherwise."""
    who = getattr(user, "username", "") or "a reviewer"
    return skill.change_status(Skill.Status.REJECTED, stage=Skill.Stage.REVIEW, user=user,
                               reason=note.strip() or f"rejected in review by {who}")


def retire_skill(skill: Skill, *, user=None, note: str = "") -> Skill:
    """Take an approved skill out of use (retrieval stops returning it). Raises SkillStateError otherwise."""
    return skill.change_status(Skill.Status.RETIRED, user=user, reason=note.strip() or "retired")


# -- retrieval and use ----------------------------------------------------------------------------------
@dataclass
class RetrievalResult:
    """The ranked hits (each with its Skill attached) and the log row (None when not logged)."""

    hits: list[retrieval.Hit] = field(default_factory=list)
    retrieval: SkillRetrieval | None = None

    @property
    def skills(self) -> list[Skill]:
        return [h.skill for h in self.hits]


def embodiment_of(task: Task) -> str:
    """The robot model of a task's arms ("Panda"), from the engine catalog; "" when unknown."""
    spec = catalog.TASKS.get(task.key)
    return spec.robots[0] if spec and spec.robots else ""


def retrieve_skills(
    *,
    instruction: str = "",
    signals: dict | None = None,
    task: Task | None = None,
    embodiment: str | None = None,
    statuses=(Skill.Status.APPROVED,),
    kinds=None,
    k: int | None = None,
    run: Run | None = None,
    candidate: Candidate | None = None,
    agent_call_id: int | None = None,
    log_use: bool = True,
) -> RetrievalResult:
    """The top-k skills for a task instruction and, during repair, the failure signals of a trace.

    ``signals``: observed failure signals (skills.signatures; ``signals_from_episode`` builds them).
    ``task`` supplies the instruction and embodiment when they are not given; ``embodiment`` filters
    to skills of that robot or of none. Only skills with a status in ``statuses`` (approved by
    default) are returned. The retrieval is logged as a SkillRetrieval (query, scores, skill ids,
    run/candidate/agent call) unless ``log_use`` is false. Raises SkillInputError on bad input.
    """
    started = time.perf_counter()
    if task is not None:
        instruction = instruction or task.instruction
        embodiment = embodiment_of(task) if embodiment is None else embodiment
    embodiment = (embodiment or "").strip()
    try:
        observed = normalise_observed(signals)
    except SignalsError as exc:
        raise SkillInputError("signals", str(exc)) from None
    instruction = (instruction or "").strip()
    if not instruction and not observed:
        raise SkillInputError("instruction", "give a task instruction, failure signals, or both")
    k = skills_setting("RETRIEVAL_K") if k is None else k
    if not isinstance(k, int) or not 1 <= k <= 50:
        raise SkillInputError("k", "k is an integer from 1 to 50")
    statuses = list(statuses)
    bad = [s for s in statuses if s not in Skill.Status.values]
    if bad or not statuses:
        raise SkillInputError("statuses", f"statuses are among {', '.join(Skill.Status.values)}")
    kinds = list(kinds or [])
    if any(kind not in Skill.Kind.values for kind in kinds):
        raise SkillInputError("kinds", f"kinds are among {', '.join(Skill.Kind.values)}")

    query = "\n".join(p for p in (instruction, describe_signals(observed)) if p)
    index = retrieval.current_index()
    vector = embeddings.encode_query(query)
    hits = index.search(vector, retrieval.tokenize(query), observed, statuses=statuses, embodiment=embodiment,
                        kinds=kinds, k=k, weights=retrieval_weights())
    by_id = Skill.objects.in_bulk([h.skill_id for h in hits])
    hits = [h for h in hits if h.skill_id in by_id]
    for hit in hits:
        hit.skill = by_id[hit.skill_id]
    result = RetrievalResult(hits=hits)
    if log_use:
        result.retrieval = SkillRetrieval.objects.create(
            instruction=instruction, signals=observed, query=query, embodiment=embodiment, statuses=statuses, k=k,
            results=[h.as_dict() for h in hits], latency_ms=round((time.perf_counter() - started) * 1000, 3),
            run=run, candidate=candidate, agent_call_id=agent_call_id,
        )
    return result


def retrieval_weights() -> dict:
    weights = {"dense": 0.6, "bm25": 0.4, "signature": 0.2}
    weights.update(skills_setting("RETRIEVAL_WEIGHTS") or {})
    return weights


def record_skill_use(
    skill: Skill,
    *,
    retrieval: SkillRetrieval | None = None,
    run: Run | None = None,
    candidate: Candidate | None = None,
    agent_call_id: int | None = None,
) -> SkillUse:
    """An agent used ``skill`` (for ``candidate``): log the use and count it (usage_count + 1)."""
    with transaction.atomic():
        use = SkillUse.objects.create(
            skill=skill, retrieval=retrieval, run=run or (candidate.run if candidate is not None else None),
            candidate=candidate, agent_call_id=agent_call_id,
        )
        # F() so concurrent uses from several workers all count.
        Skill.objects.filter(pk=skill.pk).update(usage_count=F("usage_count") + 1)
    return use


def record_skill_outcome(candidate: Candidate, *, baseline_success_rate: float | None, success_rate: float | None = None) -> int:
    """Settle the pending uses of skills by ``candidate``: a win when its success rate (a fraction; by
    default the candidate's stored one) beats ``baseline_success_rate`` (the rate it started from; None
    counts as 0). Wins add to the skills' win_count. Returns the number of wins."""
    if success_rate is None:
        candidate.refresh_from_db(fields=["success_rate"])
        success_rate = candidate.success_rate
    won = success_rate is not None and success_rate > (baseline_success_rate or 0.0)
    with transaction.atomic():
        uses = list(SkillUse.objects.select_for_update().filter(candidate=candidate, outcome=SkillUse.Outcome.PENDING))
        SkillUse.objects.filter(pk__in=[u.pk for u in uses]).update(
            outcome=SkillUse.Outcome.WIN if won else SkillUse.Outcome.NO_WIN, baseline_success_rate=baseline_success_rate,
            success_rate=success_rate, settled_at=timezone.now(),
        )
        if won:
            for use in uses:
                Skill.objects.filter(pk=use.skill_id).update(win_count=F("win_count") + 1)
    return len(uses) if won else 0


def signals_from_episode(episode: Episode) -> dict:
    """The observed failure signals of a stored episode (skills.signatures shape): the statuses and
    primitives of its failed calls (and its own end status), the last closing width, the size of the
    last perception result and its error text."""
    calls = list(episode.calls.order_by("seq"))
    failed = [c for c in calls if c.status != "OK"]
    statuses = [c.status for c in failed]
    if episode.status not in ("OK", Episode.RUNNING):
        statuses.append(episode.status)
    out: dict = {"statuses": list(dict.fromkeys(statuses)), "primitives": list(dict.fromkeys(c.primitive for c in failed))}
    closes = [c for c in calls if c.primitive.startswith("close_gripper") and isinstance(c.artifacts.get("gripper"), dict)]
    if closes:
        out["gripper_width_m"] = closes[-1].artifacts["gripper"].get("width_m")
    perception = [c for c in calls if c.primitive.startswith("segment_") and isinstance(c.artifacts.get("detections"), list)]
    if perception:
        out["detections"] = len(perception[-1].artifacts["detections"])
    if episode.error:
        out["error"] = episode.error
    return normalise_observed({k: v for k, v in out.items() if v not in (None, [], "")})


# -- agents (the experiment coordinator's side) ----------------------------------------------------------
AGENT_SIGNATURE_TEXT = ("symptom", "blocked_by", "notes")


def _agent_draft(fields: dict, task: Task | None, after_program: str) -> SkillDraft:
    """A SkillDraft from a proposal as the agents write it (worker.agents: the offline agent's findings
    and the LLM agents' propose_skill tool): failure_signature holds a symptom and trace signals;
    undeclared {{PLACEHOLDERS}} take their value from the repaired program's constant of that name."""
    from worker.agents.programs import constants

    signature = fields.get("failure_signature") or {}
    if not isinstance(signature, dict):
        signature = {"symptom": str(signature)}
    signals = {k: v for k, v in signature.items() if k in SIGNATURE_KEYS and v not in (None, [], "")}
    extra = [f"{k}: {signature[k]}" for k in AGENT_SIGNATURE_TEXT[1:] if signature.get(k)]
    sketch = str(fields.get("code_sketch") or "")
    declared = dict(fields.get("placeholders") or {})
    try:
        known = constants(after_program) if after_program else {}
    except SyntaxError:
        known = {}
    for name in placeholder_names(sketch):
        if name not in declared and name in known:
            declared[name] = {"default": known[name], "doc": "the value in the repaired program"}
    evidence = fields.get("evidence") or {}
    notes = "; ".join(extra + ([f"agent's evidence: {evidence}"] if evidence else []))
    return SkillDraft(
        name=str(fields.get("name") or ""), description=str(fields.get("description") or ""), kind=str(fields.get("kind") or ""),
        title=str(fields.get("name") or "")[:200], symptom=str(signature.get("symptom") or ""), trace_signals=signals,
        when_to_apply=str(fields.get("when_to_apply") or ""), when_not_to_apply=str(fields.get("when_not_to_apply") or ""),
        repair_strategy=str(fields.get("repair_strategy") or ""), code_sketch=sketch, placeholders=declared, notes=notes,
        embodiment=embodiment_of(task) if task is not None else "", benchmark=task.benchmark if task is not None else "",
    )


def submit_agent_proposal(fields: dict, *, run: Run, task: Task, proposed_by: str = "") -> Skill:
    """Hand one agent proposal (a dict as worker.agents write them: name, description, kind,
    failure_signature, when_to_apply, when_not_to_apply, repair_strategy, code_sketch, evidence,
    provenance {before_program, after_program, claimed_seeds, passing_seeds, before_candidate,
    after_candidate}) to admission. The seeds that passed before become control seeds (trimmed to
    the admission limit). Raises SkillInputError when the proposal is malformed; nothing is created."""
    if not isinstance(fields, dict):
        raise SkillInputError("proposal", "a proposal is a mapping of skill fields")
    provenance = fields.get("provenance") or {}
    before, after = str(provenance.get("before_program") or ""), str(provenance.get("after_program") or "")
    claimed = parse_seed_list(provenance.get("claimed_seeds"), "claimed_seeds")
    room = max(0, skills_setting("MAX_VALIDATION_SEEDS") - len(claimed))
    control = [x for x in parse_seed_list(provenance.get("passing_seeds"), "control_seeds") if x not in claimed][:room]
    candidate = None
    ref = provenance.get("after_candidate")
    if ref is not None and str(ref).isdigit():
        candidate = Candidate.objects.filter(pk=int(ref), run=run).first()
    draft = _agent_draft(fields, task, after)
    backend = (run.settings.get("agent") or {}).get("backend", "agent")
    return propose_skill(
        draft, provenance=Skill.Provenance.AGENT, proposed_by=proposed_by or f"{backend} agent, run {run.pk}", task=task,
        run=run, candidate=candidate, episodes=list(candidate.episodes.filter(seed__in=claimed)) if candidate else (),
        before_program=before, after_program=after, claimed_seeds=claimed, control_seeds=control,
        agent_call_id=candidate.agent_call_id if candidate is not None else None,
    )


def skill_for_agent(skill: Skill, score: float | None = None, retrieval_id: int | None = None) -> dict:
    """What an agent reads of a skill (the same fields, in the agents' shape: failure_signature holds
    the symptom and the trace signals)."""
    return {
        "id": skill.pk, "name": skill.name, "version": skill.version, "kind": skill.get_kind_display(),
        "description": skill.description, "failure_signature": {"symptom": skill.symptom, **skill.trace_signals},
        "when_to_apply": skill.when_to_apply, "when_not_to_apply": skill.when_not_to_apply,
        "repair_strategy": skill.repair_strategy, "code_sketch": skill.code_sketch, "placeholders": skill.placeholders,
        "validated_context": skill.validated_context, "score": None if score is None else round(score, 4),
        "retrieval_id": retrieval_id,
    }


def library_sources(exclude_task: Task | None = None) -> list[str]:
    """The approved library's source tasks in the order they joined it (by their first skill): the
    axis of a scaling run ("skills from the first N tasks"). A skill's source is the task it was found
    on, else the first task it was validated on; seed and imported skills without either are not counted."""
    order: dict[str, None] = {}
    for skill in Skill.objects.filter(status=Skill.Status.APPROVED).select_related("source_task").order_by("pk"):
        key = _source_key(skill)
        if key and (exclude_task is None or key != exclude_task.key):
            order.setdefault(key, None)
    return list(order)


def _source_key(skill: Skill) -> str:
    if skill.source_task_id:
        return skill.source_task.key
    return skill.task_keys[0] if skill.task_keys else ""


class LibraryAccess:
    """The approved library as one actor of an experiment sees it: ``search(query, k)`` returns
    skill_for_agent dicts (logged as SkillRetrieval rows of the run); with ``library_size`` N
    (scaling runs) only skills from the first N source tasks other than the actor's own count.
    ``attach(agent_call_id)`` links this round's retrievals to the agent call that made them."""

    def __init__(self, *, run: Run, task: Task, library_size: int | None = None):
        self.run, self.task, self.library_size = run, task, library_size
        self.allowed = None if library_size is None else set(library_sources(exclude_task=task)[:library_size])
        self.retrieval_ids: list[int] = []

    def search(self, query: str, k: int = 5) -> list[dict]:
        if self.allowed is not None and not self.allowed:
            return []
        result = retrieve_skills(instruction=query or self.task.instruction, task=self.task, run=self.run,
                                 k=min(50, k if self.allowed is None else k * 4))
        hits = [h for h in result.hits if self.allowed is None or _source_key(h.skill) in self.allowed][:k]
        if result.retrieval is not None:
            self.retrieval_ids.append(result.retrieval.pk)
        return [skill_for_agent(h.skill, h.score, result.retrieval.pk if result.retrieval else None) for h in hits]

    __call__ = search

    def get(self, ref) -> dict:
        """One approved skill this actor may use, by id or name; raises KeyError."""
        skills = Skill.objects.filter(status=Skill.Status.APPROVED).select_related("source_task")
        skill = skills.filter(pk=int(ref)).first() if str(ref).isdigit() else skills.filter(name=str(ref)).order_by("-version").first()
        if skill is None or (self.allowed is not None and _source_key(skill) not in self.allowed):
            raise KeyError(f"no skill {ref} in the library this search may use")
        return skill_for_agent(skill)

    def attach(self, agent_call_id: int) -> None:
        SkillRetrieval.objects.filter(pk__in=self.retrieval_ids, agent_call_id__isnull=True).update(agent_call_id=agent_call_id)
        self.retrieval_ids = []


def record_candidate_skill_use(candidate: Candidate, skill_id, *, retrieval_id=None, agent_call_id: int | None = None) -> SkillUse | None:
    """Log that ``candidate`` applies library skill ``skill_id`` (found by retrieval ``retrieval_id``,
    if known); ids may be numeric strings. Returns None for an unknown skill."""
    if not str(skill_id).isdigit():
        return None
    skill = Skill.objects.filter(pk=int(skill_id)).first()
    if skill is None:
        return None
    retrieval = SkillRetrieval.objects.filter(pk=int(retrieval_id)).first() if str(retrieval_id).isdigit() else None
    return record_skill_use(skill, retrieval=retrieval, candidate=candidate, agent_call_id=agent_call_id)


# -- exchange -------------------------------------------------------------------------------------------
def import_skill_markdown(text: str, *, proposed_by: str = "", default_kind: str = "") -> Skill:
    """Import one markdown skill file as a PROPOSED skill (provenance "import"); it goes through
    admission like any proposal (policy check now; re-execution once it has programs and seeds).
    Raises SkillFormatError (not a skill file) or SkillInputError (a field breaks a rule)."""
    draft = parse_skill_markdown(text, default_kind=default_kind)
    return propose_skill(draft, provenance=Skill.Provenance.IMPORT, proposed_by=proposed_by,
                         source_hash=hashlib.sha256(text.encode("utf-8")).hexdigest())


@dataclass
class ImportOutcome:
    """One uploaded file: the skill it became, or why it did not."""

    filename: str
    skill: Skill | None = None
    error: str = ""


def import_skill_files(files: list[tuple[str, bytes]], *, proposed_by: str = "", default_kind: str = "",
                       max_file_bytes: int = 200_000, max_files: int = 200) -> list[ImportOutcome]:
    """Import uploaded ``(filename, content)`` pairs: ``.md`` files, or ``.zip`` archives whose ``.md``
    members are imported. Each file succeeds or fails on its own (a bad file loses no good one)."""
    outcomes: list[ImportOutcome] = []
    documents: list[tuple[str, bytes]] = []
    for filename, data in files:
        if filename.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    members = [m for m in archive.infolist() if m.filename.lower().endswith(".md") and not m.is_dir()
                               and not m.filename.startswith("__MACOSX/")]
                    for member in members[:max_files]:
                        # Sizes come from the archive directory, checked before inflating anything.
                        if member.file_size > max_file_bytes:
                            outcomes.append(ImportOutcome(f"{filename}:{member.filename}", error="file too large"))
                        else:
                            documents.append((f"{filename}:{member.filename}", archive.read(member)))
                    if len(members) > max_files:
                        outcomes.append(ImportOutcome(filename, error=f"only the first {max_files} files were read"))
            except zipfile.BadZipFile:
                outcomes.append(ImportOutcome(filename, error="not a zip archive"))
        else:
            documents.append((filename, data))
    for name, data in documents:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            outcomes.append(ImportOutcome(name, error="not UTF-8 text"))
            continue
        try:
            skill = import_skill_markdown(text, proposed_by=proposed_by or f"import of {name}", default_kind=default_kind)
        except (SkillFormatError, SkillInputError) as exc:
            outcomes.append(ImportOutcome(name, error=str(exc)))
        else:
            outcomes.append(ImportOutcome(name, skill=skill))
    return outcomes


def export_library_zip(statuses=(Skill.Status.APPROVED,)) -> bytes:
    """A zip of ``<name>.md`` files, one per skill with a status in ``statuses`` (the newest version
    of each name when several match)."""
    buffer = io.BytesIO()
    seen = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for skill in Skill.objects.filter(status__in=list(statuses)).select_related("parent").order_by("name", "-version"):
            if skill.name in seen:
                continue
            seen.add(skill.name)
            archive.writestr(f"skills/{skill.name}.md", export_skill_markdown(skill))
    return buffer.getvalue()


# -- seed library ---------------------------------------------------------------------------------------
@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why"


class SeedError(ValueError):
    """A seed file that does not parse or does not pass the policy check: a bug in the shipped library."""


def install_seed_skills(directory: Path = SEED_DIR) -> SeedReport:
    """Load the seed library's markdown files as APPROVED skills (provenance "seed"). Idempotent: an
    unchanged file changes nothing; a changed file updates its seed skill in place while that skill is
    still approved; a seed skill a person retired or rejected is left alone, as is a name already
    taken by another approved skill. Raises SeedError naming the file when a seed file is broken."""
    report = SeedReport()
    for path in sorted(Path(directory).glob("*.md")):
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        try:
            draft = parse_skill_markdown(text).cleaned()
        except (SkillFormatError, SkillInputError) as exc:
            raise SeedError(f"{path.name}: {exc}") from None
        issues = check_skill_code(draft.code_sketch, draft.placeholders)
        if issues:
            raise SeedError(f"{path.name} fails the API-policy check:\n{describe_issues(issues)}")
        with transaction.atomic():
            seed = Skill.objects.select_for_update().filter(name=draft.name, provenance=Skill.Provenance.SEED).order_by("-version").first()
            if seed is not None and seed.source_hash == digest:
                report.unchanged.append(draft.name)
                continue
            if seed is not None and seed.status != Skill.Status.APPROVED:
                report.skipped.append(f"{draft.name}: the seed skill is {seed.status}")
                continue
            if seed is not None:
                for key, value in draft.as_fields().items():
                    setattr(seed, key, value)
                seed.source_hash = digest
                seed.save()
                report.updated.append(draft.name)
                continue
            other = Skill.objects.filter(name=draft.name, status=Skill.Status.APPROVED).first()
            if other is not None:
                report.skipped.append(f"{draft.name}: {other} is approved already")
                continue
            latest = Skill.objects.filter(name=draft.name).aggregate(v=Max("version"))["v"] or 0
            Skill.objects.create(
                **draft.as_fields(), version=latest + 1, provenance=Skill.Provenance.SEED, proposed_by="seed library",
                source_hash=digest, status=Skill.Status.APPROVED,
                status_reason="shipped with ASPIRE web's seed library (distilled from the reference programs)",
            )
            report.created.append(draft.name)
    return report
