"""The tools language-model agents work with, and their execution against a Workbench.

One definition serves both backends: Anthropic's ``input_schema`` and OpenAI's function
``parameters`` are the same JSON Schema. Results are text (JSON) except get_keyframe, which returns an
image for the model to look at.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from worker.search.core import Proposal

TOOLS = [
    {
        "name": "run_candidate",
        "description": "Run a program on a few debug seeds. Returns, per seed: success or what failed (status, "
        "error and its program line), the tail of what the program printed, the keyframe id of the final "
        "scene (get_keyframe shows it) and the calls a failure implicates with why. Costs one episode of "
        "this round's experiment budget per seed; every reply states the budget left.",
        "input_schema": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "the whole program"},
                "seeds": {"type": "array", "items": {"type": "integer"}, "description": "debug seeds to run (a few)"},
                "hypothesis": {"type": "string"},
            },
            "required": ["code", "seeds"],
        },
    },
    {
        "name": "list_calls",
        "description": "The primitive calls of an episode, one line each: what it came to (REACHED, "
        "NOT_REACHED, IK_FAILED, OK, ...), its program line (and the caller's line when inside a helper), "
        "the measured numbers, keyframe ids. Optionally only those with a status or of a primitive.",
        "input_schema": {
            "type": "object",
            "properties": {
                "episode": {"type": "string"},
                "status": {"type": "string"},
                "primitive": {"type": "string"},
            },
            "required": ["episode"],
        },
    },
    {
        "name": "get_call",
        "description": "One call's trace record: arguments, result, status, message, artifacts (grasp "
        "candidates, planned waypoints, detections, IK residuals) and keyframe ids. Large arrays and values "
        'already sent are given by reference ({"ref": path}); pass that path as `path` to read one in full.',
        "input_schema": {
            "type": "object",
            "properties": {"call": {"type": "string"}, "path": {"type": "string"}},
            "required": ["call"],
        },
    },
    {
        "name": "get_keyframe",
        "description": "A keyframe as an image: a camera frame or an overlay (masks, grasps, planned path) "
        "recorded with a call, or an episode's final scene.",
        "input_schema": {"type": "object", "properties": {"keyframe": {"type": "string"}}, "required": ["keyframe"]},
    },
    {
        "name": "search_skills",
        "description": "Search the approved skill library (failure signatures, repairs, code sketches) by free text.",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
    {
        "name": "read_skill",
        "description": "A skill's full text: failure signature, when (not) to apply, repair strategy, "
        "code sketch, evidence.",
        "input_schema": {"type": "object", "properties": {"skill": {"type": "string"}}, "required": ["skill"]},
    },
    {
        "name": "submit_candidates",
        "description": "Submit this round's programs; ends the round.",
        "input_schema": {
            "type": "object",
            "properties": {
                "candidates": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "hypothesis": {"type": "string"},
                            "code": {"type": "string"},
                            "parent": {"type": "string"},
                        },
                        "required": ["hypothesis", "code"],
                    },
                }
            },
            "required": ["candidates"],
        },
    },
    {
        "name": "propose_skill",
        "description": "Propose a generalisable repair for the library. After the search ends, admission "
        "checks its code against the API policy and re-runs the before and after programs (candidate ids) "
        "on the seeds it claims to fix; a person then approves it. The reply says what your own runs "
        "already show for the claim.",
        "input_schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "kind": {
                    "type": "string",
                    "enum": [
                        "localisation heuristic",
                        "perception prompt",
                        "grasp constraint",
                        "motion primitive",
                        "debugging workflow",
                        "recovery",
                    ],
                },
                "failure_signature": {
                    "type": "object",
                    "description": "symptom and the trace signals (statuses, widths, detection counts) that reveal it",
                },
                "when_to_apply": {"type": "string"},
                "when_not_to_apply": {"type": "string"},
                "repair_strategy": {"type": "string"},
                "code_sketch": {
                    "type": "string",
                    "description": "self-contained code (define the helpers it calls) with tunable "
                    "constants as {{NAME}} placeholders",
                },
                "placeholders": {
                    "type": "object",
                    "description": 'each placeholder: {"default": value, "doc": what it means, with units}; '
                    "undeclared ones take the after-program's constant of that name",
                },
                "before_candidate": {"type": "string"},
                "after_candidate": {"type": "string"},
                "claimed_seeds": {"type": "array", "items": {"type": "integer"}},
            },
            "required": ["name", "description", "kind", "failure_signature", "repair_strategy", "code_sketch"],
        },
    },
]


TOOL_NAMES = frozenset(t["name"] for t in TOOLS)


def openai_tools() -> list[dict]:
    return [
        {
            "type": "function",
            "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]},
        }
        for t in TOOLS
    ]


@dataclass
class ToolOutcome:
    text: str = ""
    image_jpeg: bytes | None = None
    is_error: bool = False
    #: refs of the keyframes this reply carries or names (the conversation page shows them as thumbnails)
    keyframes: list = field(default_factory=list)

    def image_b64(self) -> str:
        return base64.b64encode(self.image_jpeg or b"").decode()


@dataclass
class ToolRunner:
    """Executes tool calls for one round; collects submitted candidates and proposed skills."""

    workbench: object
    round: int
    debug_seeds: tuple[int, ...]
    experiment_budget: int
    candidates_by_ref: dict = field(default_factory=dict)
    submitted: list[Proposal] | None = None
    proposed_skills: list = field(default_factory=list)
    used: int = 0
    names: list = field(default_factory=list)
    _sent: dict = field(default_factory=dict)  # digest of a large value already sent -> its path
    #: the conversation's turn budget and the turns taken so far (None: no limit, e.g. an MCP client)
    max_turns: int | None = None
    turn: int = 0

    def run(self, name: str, arguments: dict) -> ToolOutcome:
        """Execute one tool call; every reply ends with the budgets left. Bad arguments, unknown refs
        and refusals come back as is_error replies, never as exceptions."""
        self.names.append(name)
        handler = getattr(self, f"_{name}", None) if name in TOOL_NAMES else None
        if handler is None:
            outcome = ToolOutcome(
                f"unknown tool {name!r}; the tools are {', '.join(sorted(TOOL_NAMES))}", is_error=True
            )
        elif not isinstance(arguments, dict):
            outcome = ToolOutcome(f"{name} failed: arguments must be a JSON object", is_error=True)
        else:
            try:
                outcome = handler(**arguments)
            except (KeyError, ValueError, TypeError) as exc:
                text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                outcome = ToolOutcome(f"{name} failed: {text}", is_error=True)
        outcome.text = f"{outcome.text}\n\n{self.budget_line()}"
        return outcome

    def budget_line(self) -> str:
        left = self.experiment_budget - self.used
        text = f"[budget: {left} of {self.experiment_budget} experiment episodes left this round"
        if self.max_turns is not None:
            text += f"; {max(0, self.max_turns - self.turn)} of {self.max_turns} model turns left"
        if self.submitted is None:
            text += "; candidates not yet submitted"
        return text + "]"

    def _run_candidate(self, code: str, seeds: list, hypothesis: str = "") -> ToolOutcome:
        if not isinstance(code, str) or not code.strip():
            raise ValueError("code must be the whole program as a string")
        if not isinstance(seeds, list) or not seeds:
            raise ValueError("seeds must be a non-empty list of debug seeds")
        wanted = [int(s) for s in seeds]
        outside = [s for s in wanted if s not in self.debug_seeds]
        seeds = list(dict.fromkeys(s for s in wanted if s in self.debug_seeds))
        if not seeds:
            raise ValueError(f"choose seeds among the debug seeds {_seed_range(self.debug_seeds)}")
        if self.used + len(seeds) > self.experiment_budget:
            raise ValueError(
                f"this would take {len(seeds)} episodes; the experiment budget allows "
                f"{self.experiment_budget - self.used} more this round"
            )
        self.used += len(seeds)
        record = self.workbench.evaluate(
            [Proposal(hypothesis or "experiment", code)], self.round, tuple(seeds), "experiment"
        )[0]
        self.candidates_by_ref[str(record.ref)] = record
        lines = [f"candidate {record.ref}: {record.outcome_line()}"]
        if outside:
            lines.append(f"(skipped seeds that are not debug seeds: {outside})")
        frames = []
        for ep in record.episodes:
            lines.extend(episode_report(ep))
            if ep.final_frame is not None:
                frames.append(str(ep.final_frame))
        return ToolOutcome("\n".join(lines), keyframes=frames)

    def _list_calls(self, episode: str, status: str | None = None, primitive: str | None = None) -> ToolOutcome:
        calls = self.workbench.calls(str(episode), status=status or None, primitive=primitive or None)
        if status and not calls:
            # "REACHED" and "NOT_REACHED" are what motions answered; match those too.
            calls = [c for c in self.workbench.calls(str(episode), primitive=primitive or None) if c.outcome == status]
        return ToolOutcome(
            "\n".join(f"{c.one_line()} [call {c.ref}] keyframes={c.keyframes}" for c in calls) or "no calls match",
            keyframes=[str(k) for c in calls for k in c.keyframes],
        )

    def _get_call(self, call: str, path: str | None = None) -> ToolOutcome:
        record = self.workbench.call(str(call))
        if path:
            value = _at_path(record, str(path))
            return ToolOutcome(f"call {call} {path}:\n" + json.dumps(value, default=str)[:MAX_REPLY_CHARS])
        compact = {k: compact_value(v, f"{call}.{k}", self._sent) for k, v in record.items()}
        return ToolOutcome(
            json.dumps(compact, default=str)[:MAX_REPLY_CHARS], keyframes=[str(k) for k in record.get("keyframes", [])]
        )

    def _get_keyframe(self, keyframe: str) -> ToolOutcome:
        image = self.workbench.keyframe(str(keyframe))
        return ToolOutcome(f"keyframe {keyframe}", image_jpeg=image, keyframes=[str(keyframe)])

    def _search_skills(self, query: str) -> ToolOutcome:
        found = self.workbench.skills(query, 5)
        return ToolOutcome(
            json.dumps(
                [{k: s.get(k) for k in ("id", "name", "kind", "description", "score")} for s in found], default=str
            )
        )

    def _read_skill(self, skill: str) -> ToolOutcome:
        return ToolOutcome(json.dumps(self.workbench.skill(skill), default=str)[:MAX_REPLY_CHARS])

    def _submit_candidates(self, candidates: list) -> ToolOutcome:
        proposals = []
        for item in candidates:
            if not isinstance(item, dict) or not str(item.get("code", "")).strip():
                raise ValueError("each candidate needs 'hypothesis' and 'code'")
            proposals.append(Proposal(str(item.get("hypothesis", "")), str(item["code"]), item.get("parent")))
        hypotheses = [p.hypothesis.strip().lower() for p in proposals]
        if len(set(hypotheses)) != len(hypotheses):
            raise ValueError("two candidates share a hypothesis; each must test a different one")
        self.submitted = proposals
        return ToolOutcome(f"received {len(proposals)} candidates")

    def _propose_skill(self, **fields) -> ToolOutcome:
        missing = [
            k
            for k in ("name", "description", "kind", "failure_signature", "repair_strategy", "code_sketch")
            if not fields.get(k)
        ]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        before = self.candidates_by_ref.get(str(fields.get("before_candidate")))
        after = self.candidates_by_ref.get(str(fields.get("after_candidate")))
        claimed = [int(s) for s in fields.get("claimed_seeds") or []]
        fields["provenance"] = {
            "before_candidate": fields.pop("before_candidate", None),
            "after_candidate": fields.pop("after_candidate", None),
            "claimed_seeds": fields.pop("claimed_seeds", []),
            **({"before_program": before.code} if before else {}),
            **({"after_program": after.code} if after else {}),
        }
        self.proposed_skills.append(fields)
        lines = [f"skill '{fields.get('name')}' recorded (proposal {len(self.proposed_skills)} of this round)."]
        rules = getattr(self.workbench, "admission_rules", None)
        lines.append(rules() if callable(rules) else DEFAULT_ADMISSION)
        lines.append(_claim_evidence(before, after, claimed))
        return ToolOutcome("\n".join(lines))


#: What admission does, when the workbench does not say (the local search keeps proposals in its outcome).
DEFAULT_ADMISSION = (
    "What happens next: nothing during this search. When it ends, the proposal is checked against the API "
    "policy, then the before and after programs are re-executed on the claimed seeds (and a few seeds that "
    "passed before); it is admitted only if claimed seeds go from failure to success and no passing seed "
    "breaks, and a person approves it before any agent can retrieve it. You will not see the verdict here."
)


def _claim_evidence(before, after, claimed: list[int]) -> str:
    """What this round's own runs say about a skill's claim (before fails / after succeeds on the seeds)."""
    if before is None or after is None:
        return (
            "Evidence: before_candidate and after_candidate must name candidates you ran (run_candidate) or "
            "were given; without both, admission has no programs to re-run and will refuse the proposal."
        )
    if not claimed:
        return "Evidence: no claimed_seeds; admission needs the seeds the repair fixes."
    outcome_before = {e.seed: e.success for e in before.episodes}
    outcome_after = {e.seed: e.success for e in after.episodes}
    flipped = [s for s in claimed if outcome_before.get(s) is False and outcome_after.get(s) is True]
    untested = [s for s in claimed if s not in outcome_before or s not in outcome_after]
    contradicted = [s for s in claimed if s not in untested and s not in flipped]
    text = f"Evidence from your runs: {len(flipped)} of {len(claimed)} claimed seeds went from failure to success"
    if flipped:
        text += f" ({flipped})"
    if contradicted:
        text += f"; contradicted on {contradicted} (did not fail before and succeed after)"
    if untested:
        text += f"; not run with both programs: {untested}"
    return text + "."


def episode_report(ep) -> list[str]:
    """One seed of a run_candidate reply: verdict, printed output, final frame, implicated calls."""
    lines = [f"seed {ep.seed} (episode {ep.ref}): {ep.verdict()}"]
    printed = ep.stdout.rstrip()
    if printed.strip():
        if len(printed) > STDOUT_HEAD_CHARS + STDOUT_TAIL_CHARS:
            omitted = len(printed) - STDOUT_HEAD_CHARS - STDOUT_TAIL_CHARS
            printed = (
                f"{printed[:STDOUT_HEAD_CHARS]}\n[... {omitted} characters omitted ...]\n{printed[-STDOUT_TAIL_CHARS:]}"
            )
        lines.append("  stdout:\n    " + printed.replace("\n", "\n    "))
    if ep.final_frame is not None:
        lines.append(f"  final scene: keyframe {ep.final_frame} (get_keyframe to see how the episode ended)")
    if not ep.success and ep.implicated:
        lines.append(f"  implicated calls ({ep.why}):")
        lines.extend(f"    {c.one_line()} [call {c.ref}] keyframes={c.keyframes}" for c in ep.implicated[:10])
    return lines


def _seed_range(seeds) -> str:
    seeds = list(seeds)
    return f"{seeds[0]}-{seeds[-1]}" if seeds else "(none)"


#: Values larger than this (JSON characters) are sent by reference in get_call.
LARGE_VALUE_CHARS = 240
#: A value at least this large (JSON characters) sent before in the conversation is sent as "same_as".
REPEAT_VALUE_CHARS = 100
MAX_REPLY_CHARS = 12000
STDOUT_HEAD_CHARS = 600  # what the program printed first and last, in characters
STDOUT_TAIL_CHARS = 1400


def compact_value(value, path: str, sent: dict):
    """``value`` made compact for a model: every large list (matrices, point lists, waypoints) is replaced
    by a reference {"ref": path, ...} that get_call's ``path`` reads back (keeping its length and, for
    lists of 3-vectors, the x, y and z ranges separately), and every sizeable value already sent in
    this conversation (the same intrinsics or camera pose again) by {"ref": path, "same_as": earlier}."""
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else ""
    ref = path.split(".", 1)[1] if "." in path else path
    if len(text) > REPEAT_VALUE_CHARS:
        digest = hashlib.sha1(text.encode()).hexdigest()
        if digest in sent:
            return {"ref": ref, "same_as": sent[digest]}
        sent[digest] = path
    if isinstance(value, dict):
        if "shape" in value and "dtype" in value:  # a tracer array summary
            if len(text) > LARGE_VALUE_CHARS and "value" in value:
                return {**{k: v for k, v in value.items() if k != "value"}, "value": {"ref": f"{ref}.value"}}
            return value
        return {k: compact_value(v, f"{path}.{k}", sent) for k, v in value.items()}
    if isinstance(value, list):
        if len(text) <= LARGE_VALUE_CHARS:
            return value
        summary = {"ref": ref, "length": len(value)}
        rows = [v for v in value if isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)]
        if rows and len(rows) == len(value):
            for axis, name in enumerate("xyz"):
                column = [r[axis] for r in rows]
                summary[f"{name}_range"] = [round(min(column), 4), round(max(column), 4)]
        return summary
    return value


def _at_path(record: dict, path: str):
    """The value at ``path`` ("args.rgb", "artifacts.grasps[3]") inside a call record."""
    value = record
    for part in path.replace("]", "").replace("[", ".").split("."):
        if part == "":
            continue
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(f"no {path!r} in this call (top-level keys: {', '.join(record)})")
    return value
