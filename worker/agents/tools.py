"""The tools language-model agents work with, and their execution against a Workbench.

One definition serves both backends: Anthropic's ``input_schema`` and OpenAI's function
``parameters`` are the same JSON Schema. Results are text (JSON) except get_keyframe, which returns an
image for the model to look at.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from worker.search.core import Proposal

TOOLS = [
    {
        "name": "run_candidate",
        "description": "Run a program on a few debug seeds and get each seed's outcome and the calls its "
        "failure implicates. Costs episodes from this round's budget.",
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
        "description": "The primitive calls of an episode, one line each, optionally only those with a "
        "status or of a primitive.",
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
        "description": "One call's full trace record: arguments, result, status, message, artifacts "
        "(grasp candidates, planned waypoints, detections) and keyframe ids.",
        "input_schema": {"type": "object", "properties": {"call": {"type": "string"}}, "required": ["call"]},
    },
    {
        "name": "get_keyframe",
        "description": "A keyframe (camera frame or overlay) recorded with a call, as an image.",
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
        "description": "Propose a generalisable repair for the library. The coordinator validates it by "
        "re-running the before and after programs on the seeds it claims to fix.",
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
    #: the conversation's turn budget and the turns taken so far (None: no limit, e.g. an MCP client)
    max_turns: int | None = None
    turn: int = 0

    def run(self, name: str, arguments: dict) -> ToolOutcome:
        self.names.append(name)
        try:
            handler = getattr(self, f"_{name}")
        except AttributeError:
            return ToolOutcome(f"unknown tool {name!r}", is_error=True)
        try:
            return handler(**arguments)
        except (KeyError, ValueError, TypeError) as exc:
            return ToolOutcome(f"{name} failed: {exc}", is_error=True)

    def _run_candidate(self, code: str, seeds: list, hypothesis: str = "") -> ToolOutcome:
        seeds = [int(s) for s in seeds if int(s) in self.debug_seeds]
        if not seeds:
            raise ValueError(f"choose seeds among the debug seeds {self.debug_seeds[0]}-{self.debug_seeds[-1]}")
        if self.used + len(seeds) > self.experiment_budget:
            raise ValueError(
                f"the experiment budget allows {self.experiment_budget - self.used} more episodes this round"
            )
        self.used += len(seeds)
        record = self.workbench.evaluate(
            [Proposal(hypothesis or "experiment", code)], self.round, tuple(seeds), "experiment"
        )[0]
        self.candidates_by_ref[str(record.ref)] = record
        lines = [f"candidate {record.ref}: {record.outcome_line()}"]
        for ep in record.episodes:
            outcome = "success" if ep.success else "failure"
            lines.append(f"seed {ep.seed} episode {ep.ref}: {outcome} {ep.status} {ep.error}".rstrip())
            lines.extend(f"  {c.one_line()} [call {c.ref}]" for c in ep.implicated[:8])
        return ToolOutcome("\n".join(lines))

    def _list_calls(self, episode: str, status: str | None = None, primitive: str | None = None) -> ToolOutcome:
        calls = self.workbench.calls(episode, status=status, primitive=primitive)
        return ToolOutcome(
            "\n".join(f"{c.one_line()} [call {c.ref}] keyframes={c.keyframes}" for c in calls) or "no calls match"
        )

    def _get_call(self, call: str) -> ToolOutcome:
        return ToolOutcome(json.dumps(self.workbench.call(call), default=str)[:12000])

    def _get_keyframe(self, keyframe: str) -> ToolOutcome:
        return ToolOutcome(f"keyframe {keyframe}", image_jpeg=self.workbench.keyframe(keyframe))

    def _search_skills(self, query: str) -> ToolOutcome:
        found = self.workbench.skills(query, 5)
        return ToolOutcome(
            json.dumps(
                [{k: s.get(k) for k in ("id", "name", "kind", "description", "score")} for s in found], default=str
            )
        )

    def _read_skill(self, skill: str) -> ToolOutcome:
        return ToolOutcome(json.dumps(self.workbench.skill(skill), default=str)[:12000])

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
        before = self.candidates_by_ref.get(str(fields.get("before_candidate")))
        after = self.candidates_by_ref.get(str(fields.get("after_candidate")))
        fields["provenance"] = {
            "before_candidate": fields.pop("before_candidate", None),
            "after_candidate": fields.pop("after_candidate", None),
            "claimed_seeds": fields.pop("claimed_seeds", []),
            **({"before_program": before.code} if before else {}),
            **({"after_program": after.code} if after else {}),
        }
        self.proposed_skills.append(fields)
        return ToolOutcome(f"skill '{fields.get('name')}' proposed; the coordinator will validate it")
