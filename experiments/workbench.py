"""The Workbench (worker.search.core) backed by the database: what the Celery actors' agents read and run
during a round.

Traces come from PrimitiveCall rows; experiments an agent runs with run_candidate are stored as
candidates of origin "experiment" (kept out of the leaderboard) so their traces can be read like any
other; usage becomes AgentCall rows; skill proposals wait on the actor for the coordinator.
"""

from __future__ import annotations

from django.db import transaction

from runs.models import USAGE_FIELDS, Actor, AgentCall, Candidate, Episode, Keyframe, PrimitiveCall, Run
from runs.sink import DjangoSink
from runs.storage import media_storage
from worker.engine import EngineSettings, program_hash, run_episode
from worker.search.core import (
    CallSummary,
    CandidateRecord,
    EpisodeSummary,
    Proposal,
    experiment_note,
    implicated_with_reason,
    trace_signals,
)
from worker.sim import catalog

from . import conversations


def call_summary(call: PrimitiveCall) -> CallSummary:
    return CallSummary(
        ref=str(call.pk),
        seq=call.seq,
        primitive=call.primitive,
        status=call.status,
        line=call.line,
        message=call.message,
        error=call.error,
        args=call.args,
        result=call.result,
        keyframes=[str(k.pk) for k in call.keyframes.all()],
        stack=list(call.stack or []),
        artifacts=dict(call.artifacts or {}),
    )


def candidate_record(candidate: Candidate, split: str = Episode.Split.DEBUG) -> CandidateRecord:
    """A candidate and its finished episodes on ``split`` as the search functions see them."""
    record = CandidateRecord(
        ref=candidate.pk,
        round=candidate.round,
        index=candidate.index,
        hypothesis=candidate.hypothesis,
        code=candidate.program,
        parent=candidate.parent_id,
        params=dict(candidate.params or {}),
    )
    episodes = candidate.episodes.filter(split=split).exclude(status__in=Episode.NO_RESULT).order_by("seed")
    for ep in episodes:
        final = ep.keyframes.filter(call__isnull=True, label="final").order_by("-pk").first()
        summary = EpisodeSummary(
            seed=ep.seed,
            success=bool(ep.success),
            status=ep.status,
            error=ep.error,
            error_line=ep.error_line,
            ref=str(ep.pk),
            stdout=ep.stdout,
            final_frame=str(final.pk) if final else None,
            control_steps=ep.control_steps or 0,
            step_budget=ep.step_budget,
        )
        if not ep.success:
            calls = [call_summary(c) for c in ep.calls.prefetch_related("keyframes")]
            summary.implicated, summary.why = implicated_with_reason(calls, ep.error_line)
            summary.signals = trace_signals(calls, ep.status, ep.error)
        record.episodes.append(summary)
    return record


class DjangoWorkbench:
    """One actor's round: runs quick experiments as candidates of origin "experiment", reads traces and
    keyframes of this actor's episodes only, retrieves skills from ``skill_source`` (logging what was
    offered), queues proposed skills on the actor, and stores usage as an AgentCall (``agent_call``, which
    the round's candidates then point at)."""

    def __init__(self, actor: Actor, round: int, skill_source=None):
        self.actor = actor
        self.round = round
        self.skill_source = skill_source  # callable(query, k) -> [skill dicts] (the library, possibly frozen)
        self.agent_call: AgentCall | None = None
        self.retrieved: list[dict] = []

    # -- running ------------------------------------------------------------------------------------
    def evaluate(
        self, proposals: list[Proposal], round: int, seeds, split: str = "experiment"
    ) -> list[CandidateRecord]:
        """Run programs now, in this process (agents' quick experiments on a few seeds)."""
        spec = catalog.get_task(self.actor.task.key)
        run = self.actor.run
        engine = EngineSettings(
            **{k: v for k, v in run.settings.items() if k in ("wall_seconds", "memory_mb")}, final_frame=True
        )
        records = []
        for proposal in proposals:
            with transaction.atomic():
                slots = Candidate.objects.filter(actor=self.actor, round=round).order_by("-index")
                index = (slots.values_list("index", flat=True).first() or 0) + 1000
                candidate = Candidate.objects.create(
                    run=run,
                    actor=self.actor,
                    round=round,
                    index=index,
                    label=f"experiment {index - 999}",
                    hypothesis=proposal.hypothesis,
                    program=proposal.code,
                    program_hash=program_hash(proposal.code),
                    origin="experiment",
                    params=proposal.params,
                )
            sink = DjangoSink(candidate, Episode.Split.CUSTOM)
            media = media_storage()
            for seed in seeds:
                run_episode(spec, proposal.code, seed, sink, engine, media)
            records.append(candidate_record(candidate, Episode.Split.CUSTOM))
        return records

    def notes(self, before_round: int) -> list[str]:
        """This actor's quick experiments of earlier rounds (candidates of origin "experiment")."""
        experiments = Candidate.objects.filter(actor=self.actor, origin="experiment", round__lt=before_round)
        return [
            experiment_note(candidate_record(c, Episode.Split.CUSTOM)) for c in experiments.order_by("round", "index")
        ]

    # -- reading traces -----------------------------------------------------------------------------
    def _episodes(self):
        return Episode.objects.filter(candidate__actor=self.actor)

    def calls(self, episode_ref, status=None, primitive=None) -> list[CallSummary]:
        episode = self._episodes().filter(pk=int(episode_ref)).first()
        if episode is None:
            raise KeyError(f"no episode {episode_ref} in this task's search")
        calls = episode.calls.prefetch_related("keyframes")
        if status:
            calls = calls.filter(status=status)
        if primitive:
            calls = calls.filter(primitive=primitive)
        return [call_summary(c) for c in calls]

    def call(self, call_ref) -> dict:
        calls = PrimitiveCall.objects.filter(pk=int(call_ref), episode__candidate__actor=self.actor)
        call = calls.prefetch_related("keyframes").first()
        if call is None:
            raise KeyError(f"no call {call_ref} in this task's search")
        return {
            "id": call.pk,
            "seq": call.seq,
            "primitive": call.primitive,
            "status": call.status,
            "message": call.message,
            "error": call.error,
            "line": call.line,
            "stack": call.stack,
            "args": call.args,
            "result": call.result,
            "artifacts": call.artifacts,
            "duration_ms": call.duration_ms,
            "keyframes": [str(k.pk) for k in call.keyframes.all()],
        }

    def keyframe(self, keyframe_ref) -> bytes:
        kf = Keyframe.objects.filter(pk=int(keyframe_ref), episode__candidate__actor=self.actor).first()
        if kf is None:
            raise KeyError(f"no keyframe {keyframe_ref} in this task's search")
        try:
            return media_storage().read(kf.image.name)
        except FileNotFoundError:
            raise KeyError(f"keyframe {keyframe_ref} has no file") from None

    # -- skills -------------------------------------------------------------------------------------
    def skills(self, query: str, k: int = 5) -> list[dict]:
        if self.skill_source is None:
            return []
        found = self.skill_source(query, k)
        self.retrieved.extend({"id": s.get("id"), "name": s.get("name"), "score": s.get("score")} for s in found)
        return found

    def skill(self, skill_ref) -> dict:
        if hasattr(self.skill_source, "get"):
            return self.skill_source.get(skill_ref)
        for s in self.skill_source(str(skill_ref), 50) if self.skill_source else []:
            if str(s.get("id")) == str(skill_ref) or s.get("name") == skill_ref:
                return s
        raise KeyError(f"no skill {skill_ref}")

    def admission_rules(self) -> str:
        """What admission will do with a proposal and when (the propose_skill tool's reply)."""
        from skills.conf import skills_setting

        flipped = skills_setting("MIN_FLIPPED_SEEDS")
        control = skills_setting("CONTROL_SEEDS")
        return (
            "What happens next: nothing during this search. When the experiment's search ends the coordinator "
            "hands the proposal to admission: its code sketch is checked against the API policy, then the before "
            "and after programs are re-executed on the claimed seeds and on "
            f"{control} seeds that passed before. It is admitted when at least {flipped} claimed seed(s) go "
            "from failure to success and no passing seed breaks (a new version of an approved skill must also "
            "beat it); a person then approves it in the admin before any agent can retrieve it. The verdict "
            "appears on the skill's page, not in this conversation."
        )

    def propose_skill(self, fields: dict):
        with transaction.atomic():
            actor = Actor.objects.select_for_update().get(pk=self.actor.pk)
            actor.proposed_skills = list(actor.proposed_skills) + [fields]
            actor.save(update_fields=["proposed_skills"])
        return len(actor.proposed_skills)

    # -- the conversation log -----------------------------------------------------------------------
    def record_turn(self, *, round, turn, backend, model, sent, response, tools, usage) -> None:
        """One model turn of the agent's conversation, as an AgentTurn (experiments.conversations; full
        requests and responses only when the run's settings say ``record``). Never raises."""
        conversations.record_turn(
            self.actor,
            round=round,
            turn=turn,
            backend=backend,
            model=model,
            sent=sent,
            response=response,
            tools=tools,
            usage=usage,
        )

    # -- accounting ---------------------------------------------------------------------------------
    def record_usage(self, usage) -> None:
        data = usage.as_dict()
        with transaction.atomic():
            self.agent_call = AgentCall.objects.create(
                run_id=self.actor.run_id,
                actor=self.actor,
                round=usage.round,
                backend=usage.backend,
                model=usage.model,
                purpose=usage.purpose,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                cost_usd=data["cost_usd"],
                turns=usage.turns,
                duration_s=usage.duration_s,
                tool_calls=usage.tool_calls,
                retrieved_skills=self.retrieved,
                error=usage.error,
            )
            add_usage(Actor.objects.filter(pk=self.actor.pk), data)
            add_usage(Run.objects.filter(pk=self.actor.run_id), data)
            conversations.link_turns(self.agent_call, usage.turns)
            if hasattr(self.skill_source, "attach"):
                self.skill_source.attach(self.agent_call.pk)


def add_usage(queryset, data: dict) -> None:
    """Add token and cost counts to rows whose totals may still be empty (None)."""
    for row in queryset.select_for_update():
        for name in USAGE_FIELDS:
            setattr(row, name, (getattr(row, name) or 0) + data.get(name, 0))
        row.save(update_fields=list(USAGE_FIELDS))
