"""How agents use the library during an experiment: ``LibraryAccess`` (the approved library as one actor
sees it, and the library sizes of a scaling run), ``skill_for_agent`` (what an agent reads of a skill),
and the use counters: ``record_skill_use`` / ``record_candidate_skill_use`` count a use,
``record_skill_outcome`` settles it as a win or not.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from runs.models import Candidate, Run, Task

from .models import Skill, SkillRetrieval, SkillUse
from .retrieval import retrieve_skills


# -- agents reading the library ---------------------------------------------------------------------------
def skill_for_agent(
    skill: Skill, score: float | None = None, retrieval_id: int | None = None, guidance: bool = False
) -> dict:
    """What an agent reads of a skill (the same fields, in the agents' shape: failure_signature holds
    the symptom and the trace signals). ``guidance``: add an imported skill's whole text (read one
    skill; search results leave it out, it can be long)."""
    out = {
        "id": skill.pk,
        "name": skill.name,
        "version": skill.version,
        "kind": skill.get_kind_display(),
        "description": skill.description,
        "failure_signature": {"symptom": skill.symptom, **skill.trace_signals},
        "when_to_apply": skill.when_to_apply,
        "when_not_to_apply": skill.when_not_to_apply,
        "repair_strategy": skill.repair_strategy,
        "code_sketch": skill.code_sketch,
        "placeholders": skill.placeholders,
        "validated_context": skill.validated_context,
        "score": None if score is None else round(score, 4),
        "retrieval_id": retrieval_id,
    }
    if guidance and skill.guidance:
        out["guidance"] = skill.guidance
    return out


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
        result = retrieve_skills(
            instruction=query or self.task.instruction,
            task=self.task,
            run=self.run,
            k=min(50, k if self.allowed is None else k * 4),
        )
        hits = [h for h in result.hits if self.allowed is None or _source_key(h.skill) in self.allowed][:k]
        if result.retrieval is not None:
            self.retrieval_ids.append(result.retrieval.pk)
        return [skill_for_agent(h.skill, h.score, result.retrieval.pk if result.retrieval else None) for h in hits]

    __call__ = search

    def get(self, ref) -> dict:
        """One approved skill this actor may use, by id or name; raises KeyError."""
        skills = Skill.objects.filter(status=Skill.Status.APPROVED).select_related("source_task")
        if str(ref).isdigit():
            skill = skills.filter(pk=int(ref)).first()
        else:
            skill = skills.filter(name=str(ref)).order_by("-version").first()
        if skill is None or (self.allowed is not None and _source_key(skill) not in self.allowed):
            raise KeyError(f"no skill {ref} in the library this search may use")
        return skill_for_agent(skill, guidance=True)

    def attach(self, agent_call_id: int) -> None:
        unattached = SkillRetrieval.objects.filter(pk__in=self.retrieval_ids, agent_call_id__isnull=True)
        unattached.update(agent_call_id=agent_call_id)
        self.retrieval_ids = []


# -- use counters -------------------------------------------------------------------------------------------
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
            skill=skill,
            retrieval=retrieval,
            run=run or (candidate.run if candidate is not None else None),
            candidate=candidate,
            agent_call_id=agent_call_id,
        )
        # F() so concurrent uses from several workers all count.
        Skill.objects.filter(pk=skill.pk).update(usage_count=F("usage_count") + 1)
    return use


def record_skill_outcome(
    candidate: Candidate, *, baseline_success_rate: float | None, success_rate: float | None = None
) -> int:
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
            outcome=SkillUse.Outcome.WIN if won else SkillUse.Outcome.NO_WIN,
            baseline_success_rate=baseline_success_rate,
            success_rate=success_rate,
            settled_at=timezone.now(),
        )
        if won:
            for use in uses:
                Skill.objects.filter(pk=use.skill_id).update(win_count=F("win_count") + 1)
    return len(uses) if won else 0


def record_candidate_skill_use(
    candidate: Candidate, skill_id, *, retrieval_id=None, agent_call_id: int | None = None
) -> SkillUse | None:
    """Log that ``candidate`` applies library skill ``skill_id`` (found by retrieval ``retrieval_id``,
    if known); ids may be numeric strings. Returns None for an unknown skill."""
    if not str(skill_id).isdigit():
        return None
    skill = Skill.objects.filter(pk=int(skill_id)).first()
    if skill is None:
        return None
    retrieval = SkillRetrieval.objects.filter(pk=int(retrieval_id)).first() if str(retrieval_id).isdigit() else None
    return record_skill_use(skill, retrieval=retrieval, candidate=candidate, agent_call_id=agent_call_id)
