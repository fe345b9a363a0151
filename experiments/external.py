"""The ``mcp`` agent backend's rounds: an external MCP client (a researcher's Claude Code, Codex, ...) is
the actor's agent. experiments.mcp_server speaks the protocol; this module does what each tool call means.

Design: the round does not block a worker. When an ``mcp`` actor's round is due, actor_step proposes it
as for any agent, but the agent (experiments.agents.ExternalAgent) only stores the round's brief on the
actor (``Actor.agent_brief``: the system prompt and first message the built-in agents get from
worker.agents.prompts, the budgets and rules) and marks it AWAITING; the step ends and frees its worker
at once. A person's client may take hours, and a blocking wait would hold a Celery worker (and its
8-minute visibility timeout and heartbeats) that long for nothing. An AWAITING actor has no owner and
nothing in flight; actor_step and the reconciler leave it alone (experiments.coordinator), and a cancel
ends it like any other actor. Each tool call the client makes is one :func:`call_tool` here, in the
process that serves the client (the web app for streamable HTTP, ``manage.py mcp_server`` for stdio):

- it runs through the same :class:`worker.agents.tools.ToolRunner` as the built-in agents, on a
  :class:`~experiments.workbench.DjangoWorkbench` of the actor's current round, so replies, trace
  access (this actor's episodes only) and skill retrieval are the same;
- the round's experiment budget (worker.agents.llm.EXPERIMENT_BUDGET episodes of run_candidate) is
  counted in the database (``agent_brief["episodes_used"]``, reserved under the actor's row lock before
  the episodes run), so it holds across requests, processes and server restarts;
- submit_candidates continues the round exactly as the built-in path does after its agent proposed
  (:func:`submit_round`): worker.search.rounds.propose_round applies the same rules (from round 1 on a
  search's candidate A is the current best unchanged, at most K, distinct hypotheses), the candidates
  become rows pointing at an AgentCall (backend "mcp", 0 tokens, cost 0, the tool names used, turns =
  tool calls), and their debug episodes are queued through the outbox, all in one transaction under
  the actor's lock, so two submissions of one round store it once.

Access: the client acts for a user (their API token); it may act only for actors of runs that user may
see and cancel (runs.access.visible_runs: owner, team members, staff), checked on every call.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from runs.access import visible_runs
from runs.models import Actor, Candidate, Episode
from worker.agents.llm import EXPERIMENT_BUDGET
from worker.agents.pricing import AgentUsage
from worker.agents.tools import TOOLS, ToolOutcome, ToolRunner
from worker.search.core import Brief, Proposal

from .agents import skill_source
from .coordinator import _lock_actor, rounds_of, settings_of
from .queues import send_episode
from .rounds import propose_next_round
from .workbench import DjangoWorkbench, candidate_record

log = logging.getLogger(__name__)

BACKEND = "mcp"
#: Tools that act on the open round (they need the actor AWAITING its client); the others only read.
ROUND_TOOLS = ("run_candidate", "submit_candidates", "propose_skill")
#: The most observe_task waits for the next round (seconds): under the 300 s an HTTP client commonly
#: waits for a reply (the client calls it again to wait longer).
MAX_WAIT_S = 240

OBSERVE_TOOL = {
    "name": "observe_task",
    "description": "Start here. The actor's task and its open round: the instruction, debug seeds, "
    "budgets (candidates to submit, experiment episodes left), the best programs so far with the calls "
    "their failures implicate, and the rules and robot API reference (the system prompt the built-in "
    "agents get). While a submitted round is evaluated it says so: pass wait_seconds to wait for the "
    "next round.",
    "input_schema": {
        "type": "object",
        "properties": {
            "wait_seconds": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_WAIT_S,
                "description": "wait up to this long for a round to open (0: answer at once)",
            }
        },
    },
}


def tool_definitions() -> list[dict]:
    """observe_task, then the built-in agents' tools (worker.agents.tools.TOOLS), as MCP lists them."""
    return [OBSERVE_TOOL, *TOOLS]


class AccessRefused(PermissionError):
    """The user may not act for this actor (no such actor, not theirs, or not an mcp actor)."""


@dataclass(frozen=True)
class Principal:
    """Who calls (a user id) and for which actor."""

    user_id: int
    actor_id: int


def user_for_token(key: str):
    """The active user of a DRF API token, or None."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=(key or "").strip()).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


def authorize(user, actor_id: int) -> Actor:
    """The actor ``user`` may act for (an mcp actor of a run they may see and cancel); raises
    AccessRefused with a reason a person can act on."""
    if user is None:
        raise AccessRefused("no valid API token (make one on your account page)")
    actor = Actor.objects.select_related("run", "task").filter(pk=actor_id).first()
    if actor is None or not visible_runs(user).filter(pk=actor.run_id).exists():
        raise AccessRefused(f"no actor {actor_id} that {user} may act for")
    backend = (actor.run.settings.get("agent") or {}).get("backend", "offline")
    if backend != BACKEND:
        raise AccessRefused(
            f"actor {actor_id} is not an mcp actor (its run's agent backend is {backend!r}); launch an "
            "experiment with the agent backend mcp"
        )
    return actor


# -- tool calls ---------------------------------------------------------------------------------------
def call_tool(principal: Principal, name: str, arguments: dict | None, client: str = "") -> ToolOutcome:
    """Run one MCP tool call for ``principal``'s actor (blocking: run_candidate runs episodes, observe_task
    may wait). Never raises for the client's mistakes: they come back as error outcomes."""
    from django.contrib.auth import get_user_model

    arguments = dict(arguments or {})
    user = get_user_model().objects.filter(pk=principal.user_id, is_active=True).first()
    try:
        actor = authorize(user, principal.actor_id)
    except AccessRefused as exc:
        return ToolOutcome(f"access refused: {exc}", is_error=True)
    if name == "observe_task":
        try:
            wait = min(max(int(arguments.get("wait_seconds") or 0), 0), MAX_WAIT_S)
        except (TypeError, ValueError):
            return ToolOutcome("wait_seconds is a whole number of seconds", is_error=True)
        outcome = observe(actor, wait)
        _RoundCall(actor, client).count(name, arguments, outcome)
        return outcome
    if name not in {t["name"] for t in TOOLS}:
        return ToolOutcome(f"unknown tool {name!r}", is_error=True)
    return _RoundCall(actor, client).run(name, arguments)


class _RoundCall:
    """One tool call against the actor's current round, through a ToolRunner as the built-in agents'."""

    def __init__(self, actor: Actor, client: str):
        self.actor, self.client = actor, client

    def run(self, name: str, arguments: dict) -> ToolOutcome:
        actor = self.actor
        if actor.is_terminal:
            return ToolOutcome(f"the search has ended ({actor.status}); nothing more to do", is_error=True)
        state = dict(actor.agent_brief or {})
        awaiting = actor.status == Actor.Status.AWAITING and not state.get("submitted")
        if name in ROUND_TOOLS and not awaiting:
            return ToolOutcome(_not_open(actor), is_error=True)
        number = int(state["round"]) if awaiting else max(actor.current_round, 0)
        debug_seeds = tuple(int(s) for s in (state.get("debug_seeds") or settings_of(actor).debug_seeds))
        budget = int(state.get("experiment_budget", EXPERIMENT_BUDGET))
        workbench = DjangoWorkbench(actor, number, skill_source(actor))
        runner = ToolRunner(workbench, number, debug_seeds, budget, max_turns=None)
        runner.candidates_by_ref.update(self._known_candidates(state, number))
        turn, used = 0, int(state.get("episodes_used", 0))
        if awaiting:
            opened = self._open_turn(
                number, name, _episodes_asked(arguments, debug_seeds) if name == "run_candidate" else 0
            )
            if opened is None:
                return ToolOutcome(_not_open(Actor.objects.get(pk=actor.pk)), is_error=True)
            turn, used = opened
        runner.turn, runner.used = turn, used
        outcome = runner.run(name, arguments)
        for fields in runner.proposed_skills:
            workbench.propose_skill(fields)
        if runner.submitted is not None and not outcome.is_error:
            try:
                outcome = ToolOutcome(submit_round(actor.pk, number, runner.submitted, self.client))
            except RoundClosed as exc:
                outcome = ToolOutcome(f"submit_candidates failed: {exc}", is_error=True)
        if awaiting:
            self._record_turn(workbench, number, turn, name, arguments, outcome)
        return outcome

    def count(self, name: str, arguments: dict, outcome: ToolOutcome) -> None:
        """A call that ran outside the round (observe_task) still counts as a turn of it when it is open."""
        actor = self.actor
        actor.refresh_from_db()
        state = actor.agent_brief or {}
        if actor.status != Actor.Status.AWAITING or state.get("submitted"):
            return
        number = int(state["round"])
        opened = self._open_turn(number, name, 0)
        if opened is not None:
            self._record_turn(
                DjangoWorkbench(actor, number, skill_source(actor)), number, opened[0], name, arguments, outcome
            )

    def _known_candidates(self, state: dict, number: int) -> dict:
        """Candidates propose_skill may name as before/after: the survivors and this round's experiments."""
        refs = [s["ref"] for s in state.get("survivors", [])]
        rows = Candidate.objects.filter(actor=self.actor).filter(pk__in=refs) | Candidate.objects.filter(
            actor=self.actor, round=number, origin="experiment"
        )
        known = {}
        for c in rows:
            split = Episode.Split.CUSTOM if c.origin == "experiment" else Episode.Split.DEBUG
            known[str(c.pk)] = candidate_record(c, split)
        return known

    def _open_turn(self, number: int, name: str, episodes: int) -> tuple[int, int] | None:
        """Count the call as a turn of the open round and, for run_candidate, reserve its episodes when
        the budget has room (the runner refuses it otherwise, with the same numbers). Returns (turn,
        episodes used before this call), or None when the round is no longer open."""
        with transaction.atomic():
            actor = _lock_actor(self.actor.pk)
            state = dict(actor.agent_brief or {}) if actor else {}
            if actor is None or actor.status != Actor.Status.AWAITING or state.get("round") != number:
                return None
            if state.get("submitted"):
                return None
            used = int(state.get("episodes_used", 0))
            if episodes and used + episodes <= int(state.get("experiment_budget", EXPERIMENT_BUDGET)):
                state["episodes_used"] = used + episodes
            state["tool_calls"] = list(state.get("tool_calls", [])) + [name]
            state["turn"] = int(state.get("turn", 0)) + 1
            if self.client and not state.get("client"):
                state["client"] = self.client
            Actor.objects.filter(pk=actor.pk).update(agent_brief=state)
        return state["turn"], used

    def _record_turn(self, workbench, number: int, turn: int, name: str, arguments: dict, outcome) -> None:
        """Hand the call to the workbench's conversation log when it keeps one (as the built-in agents'
        _ToolLoopAgent._record_turn does: one tool entry, no tokens)."""
        record = getattr(workbench, "record_turn", None)
        if record is None:
            return
        try:
            record(
                round=number,
                turn=turn,
                backend=BACKEND,
                model=self.client,
                sent=[],
                response={},
                tools=[
                    {
                        "name": name,
                        "arguments": arguments,
                        "text": outcome.text,
                        "is_error": outcome.is_error,
                        "keyframes": list(outcome.keyframes),
                    }
                ],
                usage={"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0},
            )
        except Exception:  # the log is a record of the work, never a reason to fail it
            log.exception("actor %s: recording MCP turn %s failed", self.actor.pk, turn)


def _episodes_asked(arguments: dict, debug_seeds: tuple[int, ...]) -> int:
    """The episodes a run_candidate call would run (as ToolRunner counts them); 0 when malformed."""
    try:
        return len([s for s in arguments.get("seeds") or [] if int(s) in debug_seeds])
    except (TypeError, ValueError):
        return 0


def _not_open(actor: Actor) -> str:
    if actor.is_terminal:
        return f"the search has ended ({actor.status})"
    if actor.status == Actor.Status.AWAITING:
        return "this round was already submitted; call observe_task (with wait_seconds) for the next one"
    return (
        f"no round is open for you now (actor {actor.status.lower()}: round {actor.current_round}'s "
        "candidates are being evaluated, or the next round is being prepared); call observe_task with "
        "wait_seconds to wait for it"
    )


# -- observe ------------------------------------------------------------------------------------------
def observe(actor: Actor, wait_seconds: int = 0) -> ToolOutcome:
    """The open round's brief, or where the search stands (waiting up to ``wait_seconds`` for a round)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        awaiting = actor.status == Actor.Status.AWAITING and not (actor.agent_brief or {}).get("submitted")
        if awaiting or actor.is_terminal or time.monotonic() >= deadline:
            break
        time.sleep(min(2.0, max(deadline - time.monotonic(), 0.05)))
        actor.refresh_from_db()
    if awaiting:
        return ToolOutcome(_brief_text(actor))
    if actor.is_terminal:
        best = f", best candidate {actor.best_id}" if actor.best_id else ""
        rates = ""
        if actor.final_debug_rate is not None:
            rates = f"; debug {actor.first_debug_rate:.0%} -> {actor.final_debug_rate:.0%}"
        if actor.heldout_rate is not None:
            rates += f", held-out {actor.heldout_rate:.0%}"
        why = f" ({actor.stop_reason})" if actor.stop_reason else (f": {actor.error}" if actor.error else "")
        return ToolOutcome(f"actor {actor.pk} ({actor.task.key}) has ended: {actor.status}{why}{best}{rates}")
    return ToolOutcome(f"actor {actor.pk} ({actor.task.key}), run {actor.run_id}: {_not_open(actor)}")


def _brief_text(actor: Actor) -> str:
    s = actor.agent_brief
    k, number = int(s["k"]), int(s["round"])
    used, budget = int(s.get("episodes_used", 0)), int(s.get("experiment_budget", EXPERIMENT_BUDGET))
    seeds = s["debug_seeds"]
    if s.get("mode") == "fix_loop":
        submit = "submit exactly one repaired program"
    elif s.get("floor"):
        submit = (
            f"submit up to {k - 1} candidates (K = {k}; candidate A of the round is the current best "
            "unchanged, so the first K - 1 you submit are kept)"
        )
    else:
        submit = f"submit up to {k} candidates (K = {k}; more are cut)"
    survivors = "; ".join(f"candidate {c['ref']} (round {c['round']}): {c['outcome']}" for c in s["survivors"])
    head = [
        f"actor {actor.pk} · run {actor.run_id} · task {s['task']} · round {number} (awaiting your submit_candidates)",
        f"instruction: {s['instruction']}",
        *([f"success condition: {s['success']}"] if s.get("success") else []),
        f"debug seeds: {', '.join(str(x) for x in seeds)}",
        f"budgets: {submit}, each with a hypothesis the others do not share; run_candidate may run "
        f"{budget - used} more of {budget} experiment episodes this round; round budget "
        f"{actor.settings.get('max_rounds', '?')} rounds",
        f"survivors (best first): {survivors or 'none yet'}",
        f"tool calls so far this round: {len(s.get('tool_calls', []))}",
    ]
    return "\n".join(
        [
            *head,
            "",
            "===== round brief =====",
            s["message"],
            "",
            "===== system prompt (rules, robot API reference, retrieved skills) =====",
            s["system_prompt"],
        ]
    )


# -- submitting ---------------------------------------------------------------------------------------
class RoundClosed(RuntimeError):
    """The round is no longer the client's to submit (already submitted, cancelled, ended)."""


class _Submitted:
    """The client's candidates as worker.search.rounds.Agent, so propose_round applies its rules to them
    and the usage is recorded as the built-in agents record theirs."""

    backend = BACKEND

    def __init__(self, proposals: list[Proposal], usage: AgentUsage):
        self.proposals, self.usage = proposals, usage

    def propose(self, brief: Brief, workbench) -> list[Proposal]:
        workbench.record_usage(self.usage)
        return list(self.proposals)

    def findings(self, first, best, everything) -> list[dict]:
        return []


class _FreeUsage(AgentUsage):
    """An MCP client's round: its tokens are the client's business, never priced here (whatever it is
    called)."""

    @property
    def cost_usd(self) -> float:
        return 0.0


def submit_round(actor_id: int, number: int, proposals: list[Proposal], client: str = "") -> str:
    """Continue round ``number`` of an AWAITING mcp actor with the client's ``proposals``: what
    experiments.coordinator does after a built-in agent proposed (candidates stored, AgentCall recorded,
    debug episodes queued through the outbox, actor EVALUATING), in one transaction under the actor's
    lock. Returns the reply for the client; raises RoundClosed (also for an empty submission)."""
    if not proposals:
        raise RoundClosed("submit at least one candidate")
    with transaction.atomic():
        actor = _lock_actor(actor_id, "run", "task")
        if actor is None or actor.is_terminal:
            raise RoundClosed(f"the search has ended ({actor.status if actor else 'deleted'})")
        state = dict(actor.agent_brief or {})
        if actor.status != Actor.Status.AWAITING or state.get("round") != number or state.get("submitted"):
            raise RoundClosed(f"round {number} is not open any more (actor {actor.status.lower()})")
        settings = settings_of(actor)
        rounds = rounds_of(actor)
        if len(rounds) != number:
            raise RoundClosed(f"round {number} is not the actor's next round")
        workbench = DjangoWorkbench(actor, number, skill_source(actor))
        # The brief the client worked from, not a second retrieval: the same skills, logged once.
        skills = list(state.get("skills", []))
        workbench.skills = lambda query, k=5: skills[:k]
        workbench.retrieved = list(state.get("retrieved", []))
        if hasattr(workbench.skill_source, "retrieval_ids"):
            workbench.skill_source.retrieval_ids = list(state.get("retrieval_ids", []))
        names = list(state.get("tool_calls", []))
        usage = _FreeUsage(
            BACKEND,
            (client or state.get("client") or "mcp client")[:100],
            "propose",
            number,
            turns=len(names),
            duration_s=round(_seconds_since(state.get("awaiting_since")), 2),
            tool_calls=names,
        )
        cleaned = [
            Proposal(p.hypothesis, p.code, int(p.parent) if str(p.parent or "").strip().isdigit() else None)
            for p in proposals
        ]
        created = propose_next_round(actor, settings, rounds, agent=_Submitted(cleaned, usage), workbench=workbench)
        if not created:
            raise RoundClosed(f"round {number} was stored by another submission")
        for candidate in created:
            for seed in settings.debug_seeds:
                send_episode(candidate.pk, Episode.Split.DEBUG, seed)
        Actor.objects.filter(pk=actor.pk).update(agent_brief={**state, "submitted": True})
    lines = [
        f"round {number}: {len(created)} candidates stored and queued on debug seeds "
        f"{', '.join(str(s) for s in settings.debug_seeds)}:"
    ]
    lines += [f"  {c.label} (candidate {c.pk}): {c.hypothesis}" for c in created]
    if len(created) < len(cleaned) + (1 if state.get("floor") else 0):
        lines.append(f"(at most K = {state.get('k')} per round: the rest were not kept)")
    lines.append("call observe_task with wait_seconds to wait for the results and the next round")
    return "\n".join(lines)


def _seconds_since(iso: str | None) -> float:
    if not iso:
        return 0.0
    try:
        return max((timezone.now() - datetime.fromisoformat(iso)).total_seconds(), 0.0)
    except ValueError:
        return 0.0


def describe(actor: Actor) -> str:
    """One line for logs and the stdio command: the actor and where its round stands."""
    return json.dumps({"actor": actor.pk, "run": actor.run_id, "task": actor.task.key, "status": actor.status})
