"""The life cycle of a skill: proposing it (the API-policy check at once, re-execution queued), the
review (approve, reject, retire) and the hand-off of agents' proposals from an experiment.

``propose_skill`` -> ``admit_skill`` (skills.admission, run by ``validate_skill_task``) -> ``approve_skill``
/ ``reject_skill`` by a person -> ``retire_skill``. ``submit_agent_proposal`` turns a proposal as the
agents write it (worker.agents) into a ``propose_skill`` call; agents never write the library directly.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from runs.models import Candidate, Run, Task
from runs.services import LaunchError, get_task
from worker.agents.programs import constants
from worker.library.signatures import SIGNATURE_KEYS
from worker.library.sketch import declare_from_constants
from worker.sim import catalog

from .admission import missing_evidence, reject_for_policy
from .conf import skills_setting
from .content import SkillDraft, SkillInputError
from .models import Skill, SkillStateError, SkillValidation
from .retrieval import embodiment_of

MAX_PROGRAM = 200_000


# -- proposing ----------------------------------------------------------------------------------------
def parse_seed_list(value, field_name: str) -> list[int]:
    """Seeds from "1-3,7" text or a list of integers, sorted and unique; raises SkillInputError."""
    if value in (None, ""):
        return []
    if not isinstance(value, str):
        try:
            value = [int(s) for s in value]
        except (TypeError, ValueError, OverflowError):
            raise SkillInputError(field_name, "seeds are non-negative integers") from None
        if not value:
            return []
    try:  # admission re-executes these seeds: the same range check as every launch (0..2**32-1)
        return catalog.validate_seeds(value, unique=False)
    except catalog.SeedError as exc:
        raise SkillInputError(field_name, str(exc)) from None


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
    transaction commits. Raises SkillInputError (nothing is created) on bad input. An imported skill may
    leave its kind blank (its file did not say it); approval then waits until a person sets one.
    """
    clean = draft.cleaned(allow_blank_kind=provenance == Skill.Provenance.IMPORT)
    before_program, after_program = before_program or "", after_program or ""
    claimed, control, task = _clean_evidence(
        before_program,
        after_program,
        claimed_seeds,
        control_seeds,
        _resolve_task(task) or (run.task if run is not None else None),
    )
    if parent is not None and parent.name != clean.name:
        raise SkillInputError("name", f"a new version keeps its parent's name {parent.name!r}")
    if provenance not in Skill.Provenance.values:
        raise SkillInputError("provenance", f"one of {', '.join(Skill.Provenance.values)}")

    for attempt in range(3):
        try:
            with transaction.atomic():
                latest = Skill.objects.filter(name=clean.name).aggregate(v=Max("version"))["v"] or 0
                skill = Skill.objects.create(
                    **clean.as_fields(),
                    version=latest + 1,
                    parent=parent or Skill.objects.filter(name=clean.name, status=Skill.Status.APPROVED).first(),
                    provenance=provenance,
                    proposed_by=proposed_by[:200],
                    agent_call_id=agent_call_id,
                    source_task=task,
                    source_run=run,
                    source_candidate=candidate,
                    source_hash=source_hash,
                    before_program=before_program,
                    after_program=after_program,
                    claimed_seeds=claimed,
                    control_seeds=control,
                    status=Skill.Status.PROPOSED,
                    status_reason="proposed",
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
            "before_program",
            "re-execution evidence needs all of: the program before the repair, the program after "
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
    from runs import outbox  # an outbox row now, published once the transaction commits

    outbox.send("aspire.validate_skill", [skill_id])  # skills.tasks.validate_skill_task


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
    if skill.validations.filter(
        outcome=SkillValidation.Outcome.RUNNING, run__status__in=[Run.Status.QUEUED, Run.Status.RUNNING]
    ).exists():
        raise SkillStateError(f"{skill} is being validated already")
    Skill.objects.filter(pk=skill.pk).update(status_reason="re-execution queued")
    _queue_validation(skill.pk)


# -- review ---------------------------------------------------------------------------------------------
def approve_skill(skill: Skill, *, user=None, note: str = "") -> Skill:
    """A person approves a validated skill; any other approved version of the same name is retired
    (superseded) in the same transaction. Raises SkillStateError unless the skill is validated and has a
    kind (an imported skill may arrive without one)."""
    with transaction.atomic():
        row = Skill.objects.select_for_update().get(pk=skill.pk)
        if row.status != Skill.Status.VALIDATED:
            raise SkillStateError(f"{row} is {row.status}; only a validated skill can be approved")
        if not row.kind:
            raise SkillStateError(f"{row} has no kind: set its kind (admin, Content) before approving it")
        approved = Skill.objects.select_for_update().filter(name=row.name, status=Skill.Status.APPROVED)
        for old in approved.exclude(pk=row.pk):
            old.change_status(Skill.Status.RETIRED, reason=f"superseded by version {row.version}", user=user)
        who = getattr(user, "username", "") or "a reviewer"
        skill.change_status(Skill.Status.APPROVED, reason=note.strip() or f"approved by {who}", user=user)
    return skill


def reject_skill(skill: Skill, *, user=None, note: str = "") -> Skill:
    """A person rejects a proposed or validated skill. Raises SkillStateError otherwise."""
    who = getattr(user, "username", "") or "a reviewer"
    return skill.change_status(
        Skill.Status.REJECTED,
        stage=Skill.Stage.REVIEW,
        user=user,
        reason=note.strip() or f"rejected in review by {who}",
    )


def retire_skill(skill: Skill, *, user=None, note: str = "") -> Skill:
    """Take an approved skill out of use (retrieval stops returning it). Raises SkillStateError otherwise."""
    return skill.change_status(Skill.Status.RETIRED, user=user, reason=note.strip() or "retired")


# -- agents' proposals (the experiment coordinator's side) ------------------------------------------------
AGENT_SIGNATURE_TEXT = ("symptom", "blocked_by", "notes")


def _agent_draft(fields: dict, task: Task | None, after_program: str) -> SkillDraft:
    """A SkillDraft from a proposal as the agents write it (worker.agents: the offline agent's findings
    and the LLM agents' propose_skill tool): failure_signature holds a symptom and trace signals;
    undeclared {{PLACEHOLDERS}} take their value from the repaired program's constant of that name."""
    signature = fields.get("failure_signature") or {}
    if not isinstance(signature, dict):
        signature = {"symptom": str(signature)}
    signals = {k: v for k, v in signature.items() if k in SIGNATURE_KEYS and v not in (None, [], "")}
    extra = [f"{k}: {signature[k]}" for k in AGENT_SIGNATURE_TEXT[1:] if signature.get(k)]
    sketch = str(fields.get("code_sketch") or "")
    try:
        known = constants(after_program) if after_program else {}
    except SyntaxError:
        known = {}
    declared = declare_from_constants(sketch, fields.get("placeholders"), known, "the value in the repaired program")
    evidence = fields.get("evidence") or {}
    notes = "; ".join(extra + ([f"agent's evidence: {evidence}"] if evidence else []))

    def text(key: str) -> str:
        return str(fields.get(key) or "")

    return SkillDraft(
        name=text("name"),
        description=text("description"),
        kind=text("kind"),
        title=text("name")[:200],
        symptom=str(signature.get("symptom") or ""),
        trace_signals=signals,
        when_to_apply=text("when_to_apply"),
        when_not_to_apply=text("when_not_to_apply"),
        repair_strategy=text("repair_strategy"),
        code_sketch=sketch,
        placeholders=declared,
        notes=notes,
        embodiment=embodiment_of(task) if task is not None else "",
        benchmark=task.benchmark if task is not None else "",
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
        draft,
        provenance=Skill.Provenance.AGENT,
        proposed_by=proposed_by or f"{backend} agent, run {run.pk}",
        task=task,
        run=run,
        candidate=candidate,
        episodes=list(candidate.episodes.filter(seed__in=claimed)) if candidate else (),
        before_program=before,
        after_program=after,
        claimed_seeds=claimed,
        control_seeds=control,
        agent_call_id=candidate.agent_call_id if candidate is not None else None,
    )
