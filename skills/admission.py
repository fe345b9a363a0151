"""Admission of a proposed skill by the coordinator: the API-policy check, then re-execution.

A proposal carries the program before the repair, the program after it, the task and the seeds it
claims to fix (they failed before). Admission re-executes both programs through the real engine, as an
ordinary run (source "admission") with one candidate per program, on the claimed seeds and on control
seeds that passed before, so every evidence episode is an Episode row with its trace and keyframes.

Rules (settings.SKILLS, defaults in skills.conf):
- admitted (status validated) when at least MIN_FLIPPED_SEEDS claimed seeds fail before and succeed
  after, and no seed that succeeded before fails after;
- a new version of an approved skill must also beat the parent: the parent's program (its after
  program, or the proposal's before program when the parent has none) runs on the same seeds and the
  new after program must succeed on at least max(1, ceil(REPLACEMENT_MARGIN * seeds)) more of them;
- otherwise refused (status rejected, stage "validation") with the numbers in the reason.
An engine failure (the run failed, or an episode ended INTERNAL_ERROR / SANDBOX_CRASH) decides
nothing: the validation is marked "error" and the skill stays proposed, ready to be validated again.
"""

from __future__ import annotations

import logging
import math

from django.db import transaction
from django.utils import timezone

from runs.models import Candidate, Episode, Run
from runs.services import LaunchError, create_program_run, execute_run
from worker.engine import program_hash
from worker.robot import status as st

from .conf import skills_setting
from .models import Skill, SkillValidation
from .policy import check_skill_code, describe_issues

log = logging.getLogger(__name__)

ENGINE_FAILURES = frozenset({st.INTERNAL_ERROR, st.SANDBOX_CRASH})
ROLE_BEFORE, ROLE_AFTER, ROLE_PARENT = 0, 1, 2


def missing_evidence(skill: Skill) -> list[str]:
    """What a skill lacks to be re-executed (empty when it can be)."""
    missing = []
    if not skill.source_task_id:
        missing.append("a task")
    if not skill.before_program.strip():
        missing.append("the program before the repair")
    if not skill.after_program.strip():
        missing.append("the program after the repair")
    if not skill.claimed_seeds:
        missing.append("the seeds it claims to fix")
    return missing


def reject_for_policy(skill: Skill) -> bool:
    """Run the API-policy check; on failure reject the skill with the reasons. True when it passed."""
    issues = check_skill_code(skill.code_sketch, skill.placeholders, skill.before_program, skill.after_program)
    if not issues:
        if skill.policy_issues:
            Skill.objects.filter(pk=skill.pk).update(policy_issues=[])
        return True
    Skill.objects.filter(pk=skill.pk).update(policy_issues=[i.as_dict() for i in issues])
    skill.change_status(
        Skill.Status.REJECTED,
        stage=Skill.Stage.POLICY,
        reason="refused by the API-policy check:\n" + describe_issues(issues),
    )
    return False


def admit_skill(skill_id: int) -> SkillValidation | None:
    """Admission of one proposed skill, start to finish, in this process (a Celery worker).

    Returns the validation row (None when the skill was not re-executed: not proposed any more, refused
    by the policy check, or lacking evidence; its status reason says which). Idempotent: a redelivered
    task resumes the running validation, whose run keeps its finished episodes.
    """
    skill = Skill.objects.select_related("parent", "source_task").get(pk=skill_id)
    if skill.status != Skill.Status.PROPOSED:
        log.info("skill %s is %s; nothing to admit", skill, skill.status)
        return None
    if not reject_for_policy(skill):
        return None
    missing = missing_evidence(skill)
    if missing:
        Skill.objects.filter(pk=skill.pk).update(
            status_reason="passed the API-policy check; re-execution needs " + ", ".join(missing)
        )
        return None
    try:
        validation = _start(skill)
    except LaunchError as exc:
        Skill.objects.filter(pk=skill.pk).update(status_reason=f"admission could not start the re-execution: {exc}")
        return None
    run = execute_run(validation.run_id)
    if run.status != Run.Status.FINISHED:
        return _engine_error(skill, validation, f"the admission run ended {run.status}: {run.error or 'no error text'}")
    return _decide(skill, validation)


def _start(skill: Skill) -> SkillValidation:
    """The running validation of this skill (resumed after a redelivery) or a new one with its run."""
    with transaction.atomic():
        Skill.objects.select_for_update().get(pk=skill.pk)
        for running in skill.validations.filter(outcome=SkillValidation.Outcome.RUNNING).select_related("run"):
            if running.run is not None and running.run.status not in (Run.Status.FAILED, Run.Status.CANCELLED):
                return running
            # Its run failed or was cancelled: close it and start afresh.
            SkillValidation.objects.filter(pk=running.pk).update(
                outcome=SkillValidation.Outcome.ERROR,
                finished_at=timezone.now(),
                reason=f"the admission run ended {running.run.status if running.run else 'missing'}; superseded",
            )
        claimed = sorted(set(int(s) for s in skill.claimed_seeds))
        control = _control_seeds(skill, claimed)
        seeds = claimed + control
        parent = _parent_to_beat(skill)
        run = create_program_run(
            task=skill.source_task,
            program=skill.before_program,
            seeds=seeds,
            origin="skill-before",
            source="admission",
            label=f"before: {skill}",
        )
        Candidate.objects.create(
            run=run,
            index=ROLE_AFTER,
            round=0,
            label=f"after: {skill}",
            program=skill.after_program,
            program_hash=program_hash(skill.after_program),
            origin="skill-after",
        )
        if parent is not None:
            program = parent.after_program or skill.before_program
            Candidate.objects.create(
                run=run,
                index=ROLE_PARENT,
                round=0,
                label=f"parent: {parent}",
                program=program,
                program_hash=program_hash(program),
                origin="skill-parent",
            )
        return SkillValidation.objects.create(
            skill=skill,
            task=skill.source_task,
            run=run,
            claimed_seeds=claimed,
            control_seeds=control,
            min_flipped=skills_setting("MIN_FLIPPED_SEEDS"),
            replacement_margin=skills_setting("REPLACEMENT_MARGIN") if parent is not None else 0.0,
        )


def _control_seeds(skill: Skill, claimed: list[int]) -> list[int]:
    """The proposal's control seeds, or the first CONTROL_SEEDS debug seeds of the task not claimed."""
    given = [int(s) for s in skill.control_seeds if int(s) not in claimed]
    if given:
        return sorted(set(given))
    pool = [s for s in skill.source_task.debug_seeds if s not in claimed]
    return pool[: skills_setting("CONTROL_SEEDS")]


def _parent_to_beat(skill: Skill) -> Skill | None:
    parent = skill.parent
    return parent if parent is not None and parent.status == Skill.Status.APPROVED else None


def _engine_error(skill: Skill, validation: SkillValidation, reason: str) -> SkillValidation:
    SkillValidation.objects.filter(pk=validation.pk).update(
        outcome=SkillValidation.Outcome.ERROR, reason=reason, finished_at=timezone.now()
    )
    Skill.objects.filter(pk=skill.pk).update(status_reason=f"admission could not decide: {reason}; validate it again")
    validation.refresh_from_db()
    return validation


def _outcome(episode: Episode | None) -> dict | None:
    if episode is None:
        return None
    return {"episode": episode.pk, "success": bool(episode.success), "status": episode.status}


def _decide(skill: Skill, validation: SkillValidation) -> SkillValidation:
    run = validation.run
    split = run.settings.get("split", Episode.Split.CUSTOM)
    by_role: dict[int, dict[int, Episode]] = {}
    for episode in Episode.objects.filter(run=run, split=split).select_related("candidate"):
        by_role.setdefault(episode.candidate.index, {})[episode.seed] = episode
    claimed, control = validation.claimed_seeds, validation.control_seeds
    seeds = claimed + control
    has_parent = run.candidates.filter(index=ROLE_PARENT).exists()
    roles = [ROLE_BEFORE, ROLE_AFTER] + ([ROLE_PARENT] if has_parent else [])
    for role in roles:
        episodes = by_role.get(role, {})
        if set(episodes) != set(seeds) or any(e.status == Episode.RUNNING for e in episodes.values()):
            return _engine_error(skill, validation, "the admission run did not finish every episode")
        crashed = [e for e in episodes.values() if e.status in ENGINE_FAILURES]
        if crashed:
            first = crashed[0]
            return _engine_error(skill, validation, f"seed {first.seed} ended {first.status}: {first.error[:300]}")

    def ok(role: int, seed: int) -> bool:
        return bool(by_role[role][seed].success)

    results = [
        {
            "seed": seed,
            "role": "claimed" if seed in claimed else "control",
            "before": _outcome(by_role[ROLE_BEFORE][seed]),
            "after": _outcome(by_role[ROLE_AFTER][seed]),
            "parent": _outcome(by_role[ROLE_PARENT][seed]) if has_parent else None,
        }
        for seed in seeds
    ]
    flipped = [s for s in claimed if not ok(ROLE_BEFORE, s) and ok(ROLE_AFTER, s)]
    broken = [s for s in seeds if ok(ROLE_BEFORE, s) and not ok(ROLE_AFTER, s)]
    n = len(seeds)
    n_before = sum(ok(ROLE_BEFORE, s) for s in seeds)
    n_after = sum(ok(ROLE_AFTER, s) for s in seeds)
    n_parent = sum(ok(ROLE_PARENT, s) for s in seeds) if has_parent else None

    reasons = []
    need = validation.min_flipped
    admitted = len(flipped) >= need
    reasons.append(
        f"flipped {len(flipped)} of {len(claimed)} claimed seeds{_seed_list(flipped)} (needs at least {need})"
    )
    passed_claims = [s for s in claimed if ok(ROLE_BEFORE, s)]
    if passed_claims:
        reasons.append(f"claimed seeds{_seed_list(passed_claims)} already succeeded before the repair")
    if broken:
        admitted = False
        reasons.append(f"broke {len(broken)} seed(s) that succeeded before{_seed_list(broken)}")
    else:
        reasons.append(f"broke none of the {n_before} seed(s) that succeeded before")
    if has_parent:
        margin_seeds = max(1, math.ceil(validation.replacement_margin * n - 1e-9))
        beats = n_after - n_parent >= margin_seeds
        admitted = admitted and beats
        reasons.append(
            f"{'beats' if beats else 'does not beat'} the approved parent {skill.parent}: "
            f"{n_after}/{n} vs {n_parent}/{n} "
            f"(needs at least {margin_seeds} more success(es), margin {validation.replacement_margin:g})"
        )
    summary = f"success {n_before}/{n} before, {n_after}/{n} after"
    reason = ("admitted: " if admitted else "refused: ") + "; ".join(reasons) + f"; {summary}."

    with transaction.atomic():
        SkillValidation.objects.filter(pk=validation.pk).update(
            outcome=SkillValidation.Outcome.ADMITTED if admitted else SkillValidation.Outcome.REFUSED,
            results=results,
            flipped=flipped,
            broken=broken,
            n_seeds=n,
            n_before_success=n_before,
            n_after_success=n_after,
            n_parent_success=n_parent,
            reason=reason,
            finished_at=timezone.now(),
        )
        Skill.objects.filter(pk=skill.pk).update(
            seeds_flipped=flipped,
            pass_rate_before=n_before / n,
            pass_rate_after=n_after / n,
        )
        skill.change_status(
            Skill.Status.VALIDATED if admitted else Skill.Status.REJECTED,
            stage=Skill.Stage.VALIDATION,
            reason=reason,
        )
    validation.refresh_from_db()
    return validation


def _seed_list(seeds: list[int]) -> str:
    return f" ({', '.join(str(s) for s in seeds)})" if seeds else ""
