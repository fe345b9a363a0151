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
#: Results that are themselves an outcome word (motions answer REACHED or one of the failure statuses).
RESULT_WORDS = frozenset({"REACHED", *(s.value for s in CallStatus)})


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
    stack: list = field(default_factory=list)  # [[function, line], ...] program frames, outermost first
    artifacts: dict = field(default_factory=dict)  # what the primitive measured (motion, ik, grasp, ...)

    @property
    def outcome(self) -> str:
        """What the call came to: a motion's own answer ("REACHED", "NOT_REACHED", ...) when it returned
        one, else the trace status. A move that ended within tolerance has status OK and result REACHED;
        showing "OK" there hid which it was."""
        if isinstance(self.result, str) and self.result in RESULT_WORDS:
            return self.result
        return self.status

    def where(self) -> str:
        """The program line of the call, and the program line that called the helper it sits in:
        "line 12 in grasp(), called from line 40"."""
        text = f"line {self.line}"
        frames = [f for f in self.stack if isinstance(f, (list, tuple)) and len(f) == 2]
        if len(frames) > 1:
            text += f" in {frames[-1][0]}(), called from line {frames[0][1]}"
        return text

    def measured(self) -> str:
        """The numbers a reader needs to judge the call: the pose a move reached and its error, an IK
        solve's residuals against its tolerance ("" when the call measured nothing)."""
        parts = []
        motion = self.artifacts.get("motion") if isinstance(self.artifacts, dict) else None
        if isinstance(motion, dict):
            for key in sorted(k for k in motion if k.startswith("arm")):
                arm = motion[key]
                if isinstance(arm, dict) and "position" in arm:
                    parts.append(
                        f"{key} reached {arm['position']} m, {1000 * float(arm.get('position_error_m', 0)):.1f} mm / "
                        f"{float(arm.get('orientation_error_rad', 0)):.3f} rad from the target"
                    )
        ik = self.artifacts.get("ik") if isinstance(self.artifacts, dict) else None
        if isinstance(ik, dict) and "position_error_m" in ik and self.status == OK_STATUS:
            parts.append(
                f"IK residual {1000 * float(ik['position_error_m']):.1f} mm / "
                f"{float(ik['orientation_error_rad']):.3f} rad"
            )
        return "; ".join(parts)

    def one_line(self) -> str:
        text = f"#{self.seq} {self.primitive} -> {self.outcome} ({self.where()})"
        measured = "" if self.message else self.measured()
        if self.message or measured:
            text += f": {self.message or measured}"
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
    stdout: str = ""  # what the program printed (the sandbox keeps the last 64 KiB)
    final_frame: Any = None  # keyframe ref of the scene as the episode ended (get_keyframe)
    why: str = ""  # why ``implicated`` holds these calls (see implicated_calls)
    control_steps: int = 0
    step_budget: int | None = None

    def verdict(self) -> str:
        """ "success", or what ended a failed episode in words: the error status with its message, or,
        when the program ran to its end without an error, that the task's success check never passed."""
        if self.success:
            return "success"
        if self.status == OK_STATUS:
            budget = (
                f" within the step budget ({self.control_steps}/{self.step_budget} steps)" if self.step_budget else ""
            )
            return f"FAILED: the program ended without an error but the task's success check never passed{budget}"
        text = f"FAILED: {self.status}"
        if self.error_line:
            text += f" at program line {self.error_line}"
        if self.error:
            text += f": {self.error}"
        return text


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


#: Families of primitives, by name prefix, for choosing the calls behind a failure no call reported.
GRIPPER_PREFIXES = ("close_gripper", "open_gripper", "grasp")
PERCEPTION_PREFIXES = ("segment_", "detect_", "point_prompt", "get_object", "mask_to_world", "depth_to")
GRASP_PREFIXES = ("plan_grasp", "select_", "grasp_")
MOTION_PREFIXES = ("move_", "goto_", "go_home", "follow_", "lift", "place")


def implicated_calls(calls: list[CallSummary], error_line: int = 0, context: int = 2) -> list[CallSummary]:
    """The calls a failure implicates (see :func:`implicated_with_reason`)."""
    return implicated_with_reason(calls, error_line, context)[0]


def _frame_lines(call: CallSummary) -> list:
    return [f[1] for f in call.stack if isinstance(f, (list, tuple)) and len(f) == 2]


def implicated_with_reason(
    calls: list[CallSummary], error_line: int = 0, context: int = 2
) -> tuple[list[CallSummary], str]:
    """The calls a failure implicates, chosen by what went wrong, and why these.

    - Calls reported a failure (any status but OK, or a motion that answered NOT_REACHED): those calls,
      plus the calls made from the program line that raised, if any.
    - The program raised (``error_line``) but no call failed: the calls made from that line and the
      ``context`` calls before it.
    - Every call succeeded and the program ran to its end, yet the task was not achieved: the last call
      of each step a manipulation is made of (perception, grasp choice, gripper, motion), since one of
      them did what the program asked and still left the task undone, and the final call.
    Ordered by sequence number, without repeats."""
    failed = {c.seq for c in calls if c.outcome not in (OK_STATUS, "REACHED")}
    chosen = set(failed)
    at_line = {c.seq for c in calls if error_line and (c.line == error_line or error_line in _frame_lines(c))}
    chosen |= at_line
    if failed:
        why = "the calls that reported a failure" + (" and the calls made from the failing line" if at_line else "")
    elif error_line:
        chosen |= {c.seq for c in calls[-context:]}
        why = f"no call failed; the program stopped at line {error_line}: the calls from that line and the last ones"
    else:
        for prefixes in (PERCEPTION_PREFIXES, GRASP_PREFIXES, GRIPPER_PREFIXES, MOTION_PREFIXES):
            last = [c.seq for c in calls if c.primitive.startswith(prefixes)]
            if last:
                chosen.add(last[-1])
        chosen |= {c.seq for c in calls[-1:]}
        why = (
            "every call succeeded but the task was not achieved: the last perception, grasp choice, gripper "
            "and motion calls and the final call (look at the final scene frame)"
        )
    return [c for c in calls if c.seq in chosen], why


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
    success_condition: str = ""  # the benchmark's success check in words (worker.sim.catalog.success_condition)
    scene: str = ""  # scene facts a camera user is told: objects the segmenter can name, step budget
    notes: list[str] = field(default_factory=list)  # earlier rounds' experiments: hypotheses and what they measured


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

    def notes(self, before_round: int) -> list[str]:
        """The agent's quick experiments (run_candidate) of rounds before ``before_round``, one note each:
        round, hypothesis, outcome per seed and the tail of what the program printed."""
        ...


NOTE_STDOUT_CHARS = 400


def experiment_note(record: CandidateRecord) -> str:
    """One quick experiment as a note for later rounds: its hypothesis, what each seed came to, and the
    last lines the program printed (its measured numbers)."""
    seeds = ", ".join(
        f"{e.seed} {'ok' if e.success else e.status if e.status != OK_STATUS else 'task not done'}"
        for e in record.episodes
    )
    hypothesis = record.hypothesis or "(no hypothesis)"
    text = f"round {record.round}, experiment {record.ref}: {hypothesis} -> {record.outcome_line()} [{seeds}]"
    printed = [e.stdout.strip() for e in record.episodes if e.stdout.strip()]
    if printed:
        tail = printed[-1][-NOTE_STDOUT_CHARS:]
        text += "\n  printed (last seed, tail): " + tail.replace("\n", "\n  ")
    return text
