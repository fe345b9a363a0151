"""The search loop's shared parts: settings, candidate records, failure summaries, leaderboard, stop rules.

Plain Python: the local driver (worker/search/local.py; benchmarks, CLI, tests) and the Celery actors
(experiments/) use the same functions and the same round (worker/search/rounds.py), so both follow one
protocol.

Protocol defaults mirror the published ASPIRE evolutionary search (NVlabs/ASPIRE,
aspire/sim/.claude/robosuite/evosearch): K = 8 candidates per round, at most 5 rounds, the top 3
programs survive into the next round's context, and candidate A of each later round is the current best
unchanged, so a round can never lose ground.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from worker.robot.status import CallStatus

OK_STATUS = CallStatus.OK


@dataclass
class SearchSettings:
    """One actor's search. ``mode`` "search" runs K candidates per round; "fix_loop" runs one repair
    per round aimed at the failed seeds, at most ``max_replays`` attempts per failed seed."""

    mode: str = "search"
    candidates_per_round: int = 8
    max_rounds: int = 5
    survivors: int = 3
    target_success: float = 1.0
    plateau_points: float = 5.0  # stop when the best rate rose less than this (percentage points) over two rounds
    max_replays: int = 3
    debug_seeds: tuple[int, ...] = ()
    heldout_seeds: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CallSummary:
    """A primitive call as an agent sees it: enough to diagnose, small enough to read many."""

    ref: Any  # id for get_call / the trace page
    seq: int
    primitive: str
    status: str
    line: int
    message: str = ""
    error: str = ""
    args: dict = field(default_factory=dict)
    result: Any = None
    keyframes: list = field(default_factory=list)  # refs for get_keyframe

    def one_line(self) -> str:
        text = f"#{self.seq} {self.primitive} -> {self.status} (line {self.line})"
        if self.message:
            text += f": {self.message}"
        if self.error:
            text += f" [{self.error}]"
        return text


@dataclass
class EpisodeSummary:
    seed: int
    success: bool
    status: str
    error: str = ""
    error_line: int = 0
    ref: Any = None  # episode id for list_calls
    implicated: list[CallSummary] = field(default_factory=list)
    signals: dict = field(default_factory=dict)  # machine-readable trace signals, see trace_signals()


@dataclass
class CandidateRecord:
    ref: Any
    round: int
    index: int
    hypothesis: str
    code: str
    parent: Any = None
    episodes: list[EpisodeSummary] = field(default_factory=list)
    params: dict = field(default_factory=dict)  # the offline agent's knobs, when it wrote the program

    @property
    def success_rate(self) -> float:
        return sum(e.success for e in self.episodes) / len(self.episodes) if self.episodes else 0.0

    @property
    def failed(self) -> list[EpisodeSummary]:
        return [e for e in self.episodes if not e.success]

    def outcome_line(self) -> str:
        return f"{100 * self.success_rate:.0f}% ({sum(e.success for e in self.episodes)}/{len(self.episodes)} seeds)"


@dataclass
class Proposal:
    """A candidate an agent wants evaluated."""

    hypothesis: str
    code: str
    parent: Any = None
    params: dict = field(default_factory=dict)


def implicated_calls(calls: list[CallSummary], error_line: int = 0, context: int = 2) -> list[CallSummary]:
    """The calls a failure implicates: every non-OK call, the calls made from the failing line, and the
    last ``context`` calls before the episode ended. Ordered by sequence number, without repeats."""
    chosen = {c.seq for c in calls if c.status != OK_STATUS}
    if error_line:
        chosen |= {c.seq for c in calls if c.line == error_line}
    chosen |= {c.seq for c in calls[-context:]}
    return [c for c in calls if c.seq in chosen]


def trace_signals(calls: list[CallSummary], status: str, error: str) -> dict:
    """Machine-readable failure signals of one episode, from the one extractor the skill library's
    failure signatures are matched on too (worker.library.signals, which lists the keys)."""
    from worker.library.signals import extract_signals

    return extract_signals(calls, status, error)


def leaderboard(candidates: list[CandidateRecord]) -> list[CandidateRecord]:
    """Best first: higher debug success, then the earlier candidate (a tie keeps the incumbent)."""
    return sorted(candidates, key=lambda c: (-c.success_rate, c.round, c.index))


def best_rate_per_round(rounds: list[list[CandidateRecord]]) -> list[float]:
    """Best debug success seen up to and including each round."""
    out, best = [], 0.0
    for records in rounds:
        best = max([best] + [c.success_rate for c in records])
        out.append(best)
    return out


def replay_counts(rounds: list[list[CandidateRecord]]) -> dict[int, int]:
    """Fix loop: for each seed, how many repair rounds were spent while the best program failed it."""
    counts: dict[int, int] = {}
    for r in range(1, len(rounds)):
        best = leaderboard([c for rr in rounds[:r] for c in rr])[0]
        for ep in best.failed:
            counts[ep.seed] = counts.get(ep.seed, 0) + 1
    return counts


def stop_reason(settings: SearchSettings, rounds: list[list[CandidateRecord]]) -> str | None:
    """Why the search should stop after the rounds so far, or None to go on: "target" (the best debug
    success reached the target), "round_budget", "plateau" (the best rose less than plateau_points
    percentage points over the last two rounds), or, in a fix loop, "replays_exhausted" (every seed the
    best still fails has had max_replays repair attempts)."""
    if not rounds:
        return None
    curve = best_rate_per_round(rounds)
    if curve[-1] >= settings.target_success - 1e-9:
        return "target"
    if len(rounds) >= settings.max_rounds:
        return "round_budget"
    if settings.mode == "fix_loop":
        best = leaderboard([c for r in rounds for c in r])[0]
        counts = replay_counts(rounds)
        if best.failed and all(counts.get(ep.seed, 0) >= settings.max_replays for ep in best.failed):
            return "replays_exhausted"
        return None
    if len(curve) >= 3 and 100 * (curve[-1] - curve[-3]) < settings.plateau_points:
        return "plateau"
    return None


@dataclass
class Brief:
    """What an agent is told before proposing a round's candidates."""

    task_key: str
    instruction: str
    arms: int
    cameras: tuple[str, ...]
    round: int
    k: int
    debug_seeds: tuple[int, ...]
    survivors: list[CandidateRecord]  # the top S so far, best first, with their failure traces
    eliminated: list[str]  # hypotheses tried that did not beat their parent
    skills: list[dict]  # retrieved skills (name, description, failure_signature, repair, code_sketch, score)
    starter: str = ""  # the task's reference program, if any
    mode: str = "search"


def eliminated_hypotheses(candidates: list[CandidateRecord]) -> list[str]:
    """Hypotheses whose candidate did not beat the program it started from."""
    by_ref = {c.ref: c for c in candidates}
    out = []
    for c in candidates:
        parent = by_ref.get(c.parent)
        if parent is not None and c.success_rate <= parent.success_rate and c.hypothesis:
            out.append(f"{c.hypothesis} ({c.outcome_line()} vs {parent.outcome_line()})")
    return out


class Workbench(Protocol):
    """What an agent works with during a round of one task's search: where programs run, where traces,
    keyframes and skills are read, where skill proposals and usage go.

    Two implementations: worker.search.local.LocalWorkbench (engine in this process, records in memory:
    benchmarks, tests) and experiments.workbench.DjangoWorkbench (the Celery actors: rows in the database).
    Refs (episodes, calls, keyframes, skills) are opaque ids the workbench handed out; an unknown ref
    raises KeyError (the agents' tools report it to the model)."""

    def evaluate(
        self, proposals: list[Proposal], round: int, seeds: tuple[int, ...], split: str = "debug"
    ) -> list[CandidateRecord]:
        """Run each proposal on ``seeds`` now and return its record (episodes with failure summaries)."""
        ...

    def calls(self, episode_ref, status: str | None = None, primitive: str | None = None) -> list[CallSummary]:
        """An episode's calls in order, optionally only those with ``status`` or of ``primitive``."""
        ...

    def call(self, call_ref) -> dict:
        """One call's full trace record: arguments, result, status, message, artifacts, keyframe refs."""
        ...

    def keyframe(self, keyframe_ref) -> bytes:
        """A keyframe image (JPEG bytes)."""
        ...

    def skills(self, query: str, k: int = 5) -> list[dict]:
        """Up to ``k`` skills matching ``query`` (best first, each with its ``score``)."""
        ...

    def skill(self, skill_ref) -> dict:
        """One skill by id or name."""
        ...

    def propose_skill(self, fields: dict) -> Any:
        """Keep a skill proposal (the fields of the propose_skill tool) for validation after the search."""
        ...

    def record_usage(self, usage) -> None:
        """Record one agent call's usage (worker.agents.pricing.AgentUsage: tokens, cost, tools, time)."""
        ...
