"""Run a search on this machine without Django: candidates evaluated by the engine, traces in memory.

Used by bench/search_results.py and the tests; the deployment path (experiments/: the coordinator and its
Celery actors) persists everything and spreads candidates over Celery workers instead, with the same
round (worker.search.rounds.propose_round) and the same search functions.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from worker.engine import EngineSettings, run_episode
from worker.events import MemorySink
from worker.robot.media import LocalMediaStorage
from worker.sim.catalog import TaskSpec, get_task

from .core import (
    CallSummary,
    CandidateRecord,
    EpisodeSummary,
    Proposal,
    SearchSettings,
    experiment_note,
    implicated_with_reason,
    leaderboard,
    stop_reason,
    trace_signals,
)
from .rounds import Agent, propose_round


def _evaluate(task_key: str, code: str, seeds: tuple[int, ...], media_root: str | None, trace: bool):
    """Run one program on seeds in this process; returns [(EpisodeResult, [CallRecord])]. Keyframes go
    to files under ``media_root`` (none when it is None), the final scene frame of every episode too."""
    spec = get_task(task_key)
    media = LocalMediaStorage(media_root) if media_root else None
    out = []
    for seed in seeds:
        sink = MemorySink()
        settings = EngineSettings(trace=trace, keyframes=media is not None, final_frame=media is not None)
        result = run_episode(spec, code, seed, sink, settings, media)
        out.append((result, sink.episodes[0]["calls"]))
    return out


def summarize_call(ref, record) -> CallSummary:
    return CallSummary(
        ref=ref,
        seq=record.seq,
        primitive=record.primitive,
        status=record.status,
        line=record.line,
        message=record.message,
        error=record.error,
        args=record.args,
        result=record.result,
        keyframes=[k.path for k in record.keyframes],
        stack=list(record.stack or []),
        artifacts=dict(record.artifacts or {}),
    )


@dataclass
class LocalWorkbench:
    """Evaluates candidates with the engine (in ``workers`` processes when > 1) and keeps traces.
    Keyframes (per-call frames and overlays, each episode's final scene) are files under ``media_root``;
    when it is None a temporary directory holds them (removed by close()), so an agent can always look
    at what its programs did; ``keyframes=False`` records none (benchmarks of the offline agent)."""

    spec: TaskSpec
    media_root: str | None = None
    workers: int = 1
    keyframes: bool = True
    skill_library: list[dict] = field(default_factory=list)
    usage: list = field(default_factory=list)
    proposed_skills: list[dict] = field(default_factory=list)
    episodes_run: int = 0

    def __post_init__(self):
        self._tempdir = None
        if self.media_root is None and self.keyframes:
            self._tempdir = tempfile.TemporaryDirectory(prefix="aspire-keyframes-")
            self.media_root = self._tempdir.name
        elif not self.keyframes:
            self.media_root = None
        self._experiments: list[CandidateRecord] = []
        self._frames: dict[str, str] = {}  # short keyframe ref ("f12") -> media path
        self._frame_refs: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._calls: dict = {}
        self._episode_calls: dict = {}
        self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn")) if self.workers > 1 else None

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
        if self._tempdir is not None:
            self._tempdir.cleanup()

    def evaluate(self, proposals: list[Proposal], round: int, seeds, split: str = "debug") -> list[CandidateRecord]:
        seeds = tuple(seeds)
        jobs = [(self.spec.key, p.code, seeds, self.media_root, True) for p in proposals]
        if self._pool is not None:
            outputs = list(self._pool.map(_evaluate, *zip(*jobs)))
        else:
            outputs = [_evaluate(*job) for job in jobs]
        records = []
        for index, (proposal, output) in enumerate(zip(proposals, outputs)):
            record = CandidateRecord(
                ref=f"c{next(self._ids)}",
                round=round,
                index=index,
                hypothesis=proposal.hypothesis,
                code=proposal.code,
                parent=proposal.parent,
                params=dict(proposal.params),
            )
            for result, calls in output:
                ep_ref = f"e{next(self._ids)}"
                summaries = []
                for call in calls:
                    ref = f"k{next(self._ids)}"
                    self._calls[ref] = call
                    summary = summarize_call(ref, call)
                    summary.keyframes = [self._frame_ref(path) for path in summary.keyframes]
                    summaries.append(summary)
                self._episode_calls[ep_ref] = summaries
                implicated, why = implicated_with_reason(summaries, result.error_line)
                final = [self._frame_ref(k.path) for k in result.keyframes if k.label == "final"]
                record.episodes.append(
                    EpisodeSummary(
                        seed=result.seed,
                        success=result.success,
                        status=result.status,
                        error=result.error,
                        error_line=result.error_line,
                        ref=ep_ref,
                        implicated=[] if result.success else implicated,
                        signals=trace_signals(summaries, result.status, result.error),
                        stdout=result.stdout,
                        final_frame=final[0] if final else None,
                        why="" if result.success else why,
                        control_steps=result.control_steps,
                        step_budget=result.step_budget,
                    )
                )
            self.episodes_run += len(output)
            records.append(record)
            if split == "experiment":
                self._experiments.append(record)
        return records

    def notes(self, before_round: int) -> list[str]:
        return [experiment_note(r) for r in self._experiments if r.round < before_round]

    def calls(self, episode_ref, status=None, primitive=None):
        calls = self._episode_calls.get(episode_ref)
        if calls is None:
            raise KeyError(f"no episode {episode_ref!r}")
        return [
            c
            for c in calls
            if (status is None or c.status == status) and (primitive is None or c.primitive == primitive)
        ]

    def _frame_ref(self, path: str) -> str:
        """A short ref for a keyframe file (what a model reads and names back costs tokens)."""
        if path not in self._frame_refs:
            ref = f"f{len(self._frames) + 1}"
            self._frames[ref], self._frame_refs[path] = path, ref
        return self._frame_refs[path]

    def call(self, call_ref) -> dict:
        if call_ref not in self._calls:
            raise KeyError(f"no call {call_ref!r}")
        record = self._calls[call_ref].as_dict()
        record["keyframes"] = [
            {"ref": self._frame_ref(k["path"]), "kind": k["kind"], "camera": k["camera"], "label": k["label"]}
            for k in record["keyframes"]
        ]
        return record

    def keyframe(self, keyframe_ref) -> bytes:
        if not self.media_root:
            raise KeyError("keyframes were not recorded")
        path = self._frames.get(str(keyframe_ref))
        if path is None:
            raise KeyError(f"no keyframe {keyframe_ref!r}")
        try:
            return LocalMediaStorage(self.media_root).read(path)
        except FileNotFoundError:
            raise KeyError(f"no keyframe {keyframe_ref!r}") from None

    def skills(self, query: str, k: int = 5) -> list[dict]:
        words = set(query.lower().split())
        scored = [
            (len(words & set((s.get("description", "") + " " + s.get("name", "")).lower().split())), s)
            for s in self.skill_library
        ]
        return [dict(s, score=score) for score, s in sorted(scored, key=lambda t: -t[0])[:k] if score > 0]

    def skill(self, skill_ref) -> dict:
        for s in self.skill_library:
            if s.get("id") == skill_ref or s.get("name") == skill_ref:
                return s
        raise KeyError(f"no skill {skill_ref!r}")

    def propose_skill(self, fields: dict):
        self.proposed_skills.append(dict(fields))
        return len(self.proposed_skills)

    def record_usage(self, usage) -> None:
        self.usage.append(usage)


@dataclass
class SearchOutcome:
    rounds: list[list[CandidateRecord]]
    best: CandidateRecord
    first: CandidateRecord
    stop: str
    heldout: CandidateRecord | None
    wall_s: float
    proposed_skills: list[dict]

    def summary(self) -> dict:
        return {
            "rounds_used": len(self.rounds),
            "stop": self.stop,
            "first_candidate_debug": round(self.first.success_rate, 4),
            "final_debug": round(self.best.success_rate, 4),
            "heldout": round(self.heldout.success_rate, 4) if self.heldout else None,
            "best_hypothesis": self.best.hypothesis,
            "wall_s": round(self.wall_s, 1),
            "candidates": sum(len(r) for r in self.rounds),
        }

    def repairs_tried(self) -> list[dict]:
        """Every candidate a repair rule made (params["rule"] other than "start", "mutation" or none; a
        library skill's application counts, as rule "skill:<name>"), in the order evaluated, so each repair
        family's effect can be reported on the tasks it was tried on. Each: {"rule", "hypothesis", "round",
        "ref", "parent", "parent_debug", "debug" (debug success rates, 0-1, on the same debug seeds),
        "seeds_flipped" (seeds the parent failed and the candidate passed), "seeds_broken" (the reverse)}.
        A candidate whose parent is not among the search's candidates has parent_debug None and no seeds."""
        everything = [c for r in self.rounds for c in r]
        by_ref = {c.ref: c for c in everything}
        out = []
        for candidate in everything:
            rule = candidate.params.get("rule") or ""
            if rule in ("", "start", "mutation"):
                continue
            parent = by_ref.get(candidate.parent)
            passed = {e.seed for e in candidate.episodes if e.success}
            before = {e.seed for e in parent.episodes if e.success} if parent else set()
            seeds = {e.seed for e in parent.episodes} if parent else set()
            out.append(
                {
                    "rule": rule,
                    "hypothesis": candidate.hypothesis,
                    "round": candidate.round,
                    "ref": candidate.ref,
                    "parent": candidate.parent,
                    "parent_debug": round(parent.success_rate, 4) if parent else None,
                    "debug": round(candidate.success_rate, 4),
                    "seeds_flipped": sorted((passed & seeds) - before),
                    "seeds_broken": sorted((seeds - passed) & before),
                }
            )
        return out


def run_search(
    spec: TaskSpec, agent: Agent, workbench: LocalWorkbench, settings: SearchSettings, heldout: bool = True, log=print
) -> SearchOutcome:
    """The whole loop for one task: rounds until a stop rule, then one held-out evaluation of the best."""
    started = time.monotonic()
    rounds: list[list[CandidateRecord]] = []
    everything: list[CandidateRecord] = []
    reason = None
    while reason is None:
        proposals = propose_round(agent, workbench, spec, settings, rounds)
        records = workbench.evaluate(proposals, len(rounds), settings.debug_seeds)
        rounds.append(records)
        everything.extend(records)
        best = leaderboard(everything)[0]
        log(f"{spec.key} round {len(rounds) - 1}: best {best.outcome_line()} ({best.hypothesis[:70]})")
        reason = stop_reason(settings, rounds)
    best = leaderboard(everything)[0]
    held = None
    if heldout and settings.heldout_seeds:
        final = Proposal(best.hypothesis, best.code, best.ref, best.params)
        held = workbench.evaluate([final], len(rounds), settings.heldout_seeds, "heldout")[0]
    for fields in agent.findings(rounds[0][0], best, everything):
        workbench.propose_skill(fields)
    return SearchOutcome(
        rounds, best, rounds[0][0], reason, held, time.monotonic() - started, list(workbench.proposed_skills)
    )
