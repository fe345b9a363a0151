"""One search round, the same for both drivers: the agent's interface and the function that runs its turn.

The local driver (worker/search/local.py: benchmarks, tests) and the Celery actors (experiments/rounds.py)
both call :func:`propose_round`; they differ only in where candidates then run and where records live
(their :class:`~worker.search.core.Workbench`).
"""

from __future__ import annotations

from typing import Protocol

from worker.sim.catalog import TaskSpec, scene_facts, starter_source, success_condition

from .core import Brief, CandidateRecord, Proposal, SearchSettings, Workbench, eliminated_hypotheses, leaderboard

FLOOR_HYPOTHESIS = "keep the current best (floor)"


class Agent(Protocol):
    """Writes a task's candidate programs, round by round (worker.agents: the offline search agent, Claude,
    OpenAI-compatible endpoints)."""

    def propose(self, brief: Brief, workbench: Workbench) -> list[Proposal]:
        """The round's candidates (at most ``brief.k`` are kept), each testing one stated hypothesis.

        ``brief`` says what the search knows (survivors with their failure traces, eliminated hypotheses,
        retrieved skills, budgets). The agent may read traces, run quick experiments, look up skills and
        propose skills through ``workbench``, and records what it cost with ``workbench.record_usage``.
        Raises on failure (a failed agent ends its actor, not the run)."""
        ...

    def findings(self, first: CandidateRecord, best: CandidateRecord, everything: list[CandidateRecord]) -> list[dict]:
        """Skill proposals distilled once the search has stopped (``first``: round 0's first candidate;
        ``best``: the leaderboard's top; ``everything``: every candidate of every round). Agents that
        propose skills during their rounds (with the workbench) return []."""
        ...


def propose_round(
    agent: Agent, workbench: Workbench, spec: TaskSpec, settings: SearchSettings, rounds: list[list[CandidateRecord]]
) -> list[Proposal]:
    """The candidates of round ``len(rounds)``: brief the agent, take its proposals, apply the floor.

    The brief carries the top ``settings.survivors`` candidates so far (best first, with their failure
    traces), the hypotheses that did not beat their parent, the skills retrieved for the instruction, the
    task's reference program, the benchmark's success condition and scene facts, the notes of the
    agent's own experiments in earlier rounds (workbench.notes: hypotheses and what they measured) and
    the budget: ``candidates_per_round`` in a search, one repair in a fix
    loop. From round 1 on, a search's candidate A is the current best unchanged (the floor: scenes are
    deterministic, so re-running it costs time, not noise, and a round can never lose ground), followed
    by the agent's first K - 1. Raises RuntimeError when the agent proposes nothing.
    """
    number = len(rounds)
    everything = [c for r in rounds for c in r]
    ranked = leaderboard(everything)
    k = settings.candidates_per_round if settings.mode == "search" else 1
    brief = Brief(
        task_key=spec.key,
        instruction=spec.instruction,
        arms=spec.arms,
        cameras=spec.cameras,
        round=number,
        k=k,
        debug_seeds=settings.debug_seeds,
        survivors=ranked[: settings.survivors],
        eliminated=eliminated_hypotheses(everything),
        skills=workbench.skills(spec.instruction, 5),
        starter=starter_source(spec),
        mode=settings.mode,
        success_condition=success_condition(spec),
        scene=scene_facts(spec),
        notes=list(workbench.notes(number)) if hasattr(workbench, "notes") else [],
    )
    proposals = list(agent.propose(brief, workbench))
    if not proposals:
        raise RuntimeError(f"the agent proposed no candidates for round {number}")
    if ranked and settings.mode == "search":
        best = ranked[0]
        proposals = [Proposal(FLOOR_HYPOTHESIS, best.code, best.ref, best.params)] + proposals[: k - 1]
    return proposals[:k]
