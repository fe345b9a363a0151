"""An actor's round on Celery: the agent proposes it (worker.search.rounds.propose_round, as in the local
driver), and its candidates become rows, with the agent call's cost spread over them and the library
skills they apply logged as uses."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from runs import live
from runs.models import USAGE_FIELDS, Actor, AgentCall, Candidate
from skills.services import record_candidate_skill_use
from worker.engine import program_hash
from worker.search.core import CandidateRecord, Proposal, SearchSettings
from worker.search.rounds import propose_round
from worker.sim import catalog

from .agents import AwaitingClient, make_agent, skill_source
from .workbench import DjangoWorkbench, add_usage

log = logging.getLogger(__name__)


def propose_next_round(
    actor: Actor,
    settings: SearchSettings,
    rounds: list[list[CandidateRecord]],
    *,
    agent=None,
    workbench: DjangoWorkbench | None = None,
) -> list[Candidate]:
    """Have the actor's agent write round ``len(rounds)`` and store its candidates (status EVALUATING).
    Returns [] when a redelivered step of this actor created the round first, or when the agent is an
    external MCP client that now has the round's brief (the actor AWAITING it; experiments.external
    continues the round from here when the client submits). Raises when the agent fails.

    ``agent`` / ``workbench`` replace the run's agent and a fresh workbench (the MCP submission passes the
    client's candidates as an agent that returns them)."""
    number = len(rounds)
    workbench = workbench or DjangoWorkbench(actor, number, skill_source(actor))
    agent = agent or make_agent(actor.run.settings.get("agent", {}))
    try:
        proposals = propose_round(agent, workbench, catalog.get_task(actor.task.key), settings, rounds)
    except AwaitingClient as waiting:
        log.info("actor %s: round %s awaits its MCP client", actor.pk, waiting.round)
        return []
    try:
        with transaction.atomic():
            return _create_round(actor, number, proposals, workbench)
    except IntegrityError:
        # Another step of this actor (a redelivered task) created this round first; keep its version.
        log.info("round %s of actor %s was already proposed", number, actor.pk)
        return []


def _create_round(actor: Actor, number: int, proposals: list[Proposal], workbench: DjangoWorkbench) -> list[Candidate]:
    created = []
    for index, proposal in enumerate(proposals):
        parent = None
        if proposal.parent is not None:
            parent = Candidate.objects.filter(pk=proposal.parent, actor=actor).first()
        created.append(
            Candidate.objects.create(
                run=actor.run,
                actor=actor,
                round=number,
                index=index,
                label=f"round {number} · {chr(65 + index)}",
                hypothesis=proposal.hypothesis[:2000],
                program=proposal.code,
                program_hash=program_hash(proposal.code),
                origin="agent",
                parent=parent,
                params=proposal.params,
                agent_call=workbench.agent_call,
            )
        )
    _spread_usage(workbench.agent_call, [c for c in created if not (c.parent and c.program == c.parent.program)])
    _record_skill_uses(created, workbench)
    Actor.objects.filter(pk=actor.pk).update(status=Actor.Status.EVALUATING, current_round=number)
    for candidate in created:
        live.run_changed(actor.run_id, "candidate", candidate=candidate.pk)
    return created


def _record_skill_uses(candidates: list[Candidate], workbench: DjangoWorkbench) -> None:
    """Candidates that apply a library skill (the offline agent's skill repairs name it in their
    params) count as uses of it; their outcome is settled once their debug evaluation is complete."""
    call_id = workbench.agent_call.pk if workbench.agent_call is not None else None
    for candidate in candidates:
        if isinstance(candidate.params, dict) and candidate.params.get("skill") is not None:
            record_candidate_skill_use(
                candidate,
                candidate.params["skill"],
                retrieval_id=candidate.params.get("retrieval"),
                agent_call_id=call_id,
            )


def _spread_usage(call: AgentCall | None, candidates: list[Candidate]) -> None:
    """Attribute an agent call's tokens and cost evenly to the candidates it wrote."""
    if call is None or not candidates:
        return
    share = {name: getattr(call, name) / len(candidates) for name in USAGE_FIELDS}
    rounded = {k: (round(v, 6) if k == "cost_usd" else int(round(v))) for k, v in share.items()}
    for candidate in candidates:
        add_usage(Candidate.objects.filter(pk=candidate.pk), rounded)
