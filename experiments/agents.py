"""Which agent an actor works with, and which skills it may retrieve.

``make_agent`` turns a run's agent settings ({"backend": "offline" | "claude" | "openai", "model",
"base_url"}) into a worker.search.rounds.Agent; API keys come from the worker's environment only.
"""

from __future__ import annotations

import os

from django.conf import settings

from runs.models import Actor
from skills.services import LibraryAccess
from worker.agents.llm import ClaudeAgent, OpenAICompatibleAgent
from worker.agents.offline import OfflineSearchAgent
from worker.agents.pricing import DEFAULT_CLAUDE_MODEL, AgentUsage
from worker.search.core import Brief, Proposal, Workbench


class RecordedOfflineAgent(OfflineSearchAgent):
    """The offline search agent with each round recorded as an agent call (no tokens, no cost), as the
    language-model agents record theirs, so every round's candidates point at the call that wrote them."""

    def propose(self, brief: Brief, workbench: Workbench) -> list[Proposal]:
        proposals = super().propose(brief, workbench)
        workbench.record_usage(AgentUsage("offline", "", "propose", brief.round))
        return proposals


def make_agent(config: dict):
    """The agent a run's settings["agent"] names (default: the offline search agent)."""
    backend = config.get("backend", "offline")
    if backend == "offline":
        return RecordedOfflineAgent(seed=int(config.get("seed", 0)))
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
