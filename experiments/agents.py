"""Which agent an actor works with, and which skills it may retrieve.

``make_agent`` turns a run's agent settings ({"backend": "offline" | "claude" | "openai" | "mcp", "model",
"base_url"}) into a worker.search.rounds.Agent; API keys come from the worker's environment only.
The ``mcp`` backend's agent is a person's own MCP client (Claude Code, Codex, ...): its
:class:`ExternalAgent` only briefs the round and leaves it AWAITING the client (experiments.external).
"""

from __future__ import annotations

import json
import os

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from runs import live
from runs.models import Actor
from skills.services import LibraryAccess
from worker.agents.llm import EXPERIMENT_BUDGET, ClaudeAgent, OpenAICompatibleAgent
from worker.agents.offline import OfflineSearchAgent
from worker.agents.pricing import DEFAULT_CLAUDE_MODEL, AgentUsage
from worker.agents.prompts import round_message, system_prompt
from worker.search.core import Brief, Proposal, Workbench

#: The agent backends a run may choose.
BACKENDS = ("offline", "claude", "openai", "mcp")


class RecordedOfflineAgent(OfflineSearchAgent):
    """The offline search agent with each round recorded as an agent call (no tokens, no cost), as the
    language-model agents record theirs, so every round's candidates point at the call that wrote them."""

    def propose(self, brief: Brief, workbench: Workbench) -> list[Proposal]:
        proposals = super().propose(brief, workbench)
        workbench.record_usage(AgentUsage("offline", "", "propose", brief.round))
        return proposals


class AwaitingClient(Exception):
    """Raised by :meth:`ExternalAgent.propose`: the round is briefed and waits for the MCP client."""

    def __init__(self, round: int):
        super().__init__(f"round {round} awaits the actor's MCP client")
        self.round = round


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def round_state(brief: Brief, workbench, experiment_budget: int = EXPERIMENT_BUDGET) -> dict:
    """What an ``mcp`` actor stores for its client (Actor.agent_brief): the brief as the built-in agents
    get it (worker.agents.prompts: the system prompt and the round's first message), the rules
    submit_candidates applies, and the round's bookkeeping (tool calls, experiment episodes used)."""
    source = getattr(workbench, "skill_source", None)
    return {
        "round": brief.round,
        "task": brief.task_key,
        "instruction": brief.instruction,
        **({"success": brief.success} if getattr(brief, "success", None) else {}),
        "arms": brief.arms,
        "cameras": list(brief.cameras),
        "k": brief.k,
        "mode": brief.mode,
        "floor": bool(brief.survivors) and brief.mode == "search",
        "debug_seeds": [int(s) for s in brief.debug_seeds],
        "survivors": [
            {"ref": c.ref, "round": c.round, "hypothesis": c.hypothesis, "outcome": c.outcome_line()}
            for c in brief.survivors
        ],
        "eliminated": list(brief.eliminated),
        "skills": _jsonable(brief.skills),
        "system_prompt": system_prompt(brief.arms, brief.skills),
        "message": round_message(brief, experiment_budget),
        "experiment_budget": experiment_budget,
        "episodes_used": 0,
        "tool_calls": [],
        "client": "",
        "retrieved": _jsonable(getattr(workbench, "retrieved", [])),
        "retrieval_ids": list(getattr(source, "retrieval_ids", []) or []),
        "awaiting_since": timezone.now().isoformat(),
        "submitted": False,
    }


class ExternalAgent:
    """The ``mcp`` backend: the actor's agent is an MCP client outside the workers (a researcher's
    Claude Code or Codex). Proposing a round stores its brief on the actor, marks it AWAITING and
    returns at once (raising :class:`AwaitingClient`, which experiments.rounds takes as "nothing to
    queue yet"): no Celery worker waits for the hours a person's client may take. The client's
    submit_candidates continues the round (experiments.external.submit_round)."""

    backend = "mcp"

    def __init__(self, experiment_budget: int = EXPERIMENT_BUDGET):
        self.experiment_budget = experiment_budget

    def propose(self, brief: Brief, workbench: Workbench) -> list[Proposal]:
        actor = workbench.actor
        state = round_state(brief, workbench, self.experiment_budget)
        with transaction.atomic():
            # Only a step that holds the actor PROPOSING opens the round (a cancel may have come first).
            opened = Actor.objects.filter(pk=actor.pk, status=Actor.Status.PROPOSING).update(
                status=Actor.Status.AWAITING, agent_brief=state
            )
            if opened:
                live.run_changed(actor.run_id, "actor", actor=actor.pk)
        raise AwaitingClient(brief.round)

    def findings(self, first, best, everything) -> list[dict]:
        return []  # the client proposes skills with its propose_skill tool during the rounds


def make_agent(config: dict):
    """The agent a run's settings["agent"] names (default: the offline search agent)."""
    backend = config.get("backend", "offline")
    if backend == "offline":
        return RecordedOfflineAgent(seed=int(config.get("seed", 0)))
    if backend == "mcp":
        return ExternalAgent()
    if backend == "claude":
        return ClaudeAgent(model=config.get("model") or DEFAULT_CLAUDE_MODEL)
    return OpenAICompatibleAgent(
        model=config.get("model", ""),
        base_url=config.get("base_url") or settings.ASPIRE["OPENAI_BASE_URL"],
        api_key=os.environ.get("OPENAI_API_KEY"),
    )


def skill_source(actor: Actor) -> LibraryAccess:
    """Retrieval over the approved library, limited to the first N source tasks in scaling runs."""
    return LibraryAccess(run=actor.run, task=actor.task, library_size=actor.library_size)
