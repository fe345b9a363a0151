"""The offline search agent: writes and repairs programs with no language model and no key.

Round 0: the task's reference program, or the template whose kind the instruction names with its
prompts filled from the instruction's noun phrases (worker.agents.programs), plus variations.
Later rounds: for each surviving program, repairs whose failure signature matches its failed seeds'
trace signals (a prompt that finds nothing, IK failures, a finger blocked by a neighbouring object,
an empty grasp, blocked or stalled moves), then parameter mutations of the best program (heights,
offsets, depths, scaled), each candidate carrying one stated hypothesis and none repeating a
hypothesis already eliminated. Approved skills whose code sketch defines a function the program has
are offered as repairs too, when their failure signature fits the failures (worker.library reads the
signals and signatures and fills the sketch, as the skills app does). After the search, every repair
that flipped seeds becomes a proposed skill (DESIGN section 5 fields with before/after programs as
provenance) for the coordinator to validate.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from dataclasses import dataclass

from worker.library.signals import failed_call_statuses
from worker.library.signatures import read_signature, signature_applies
from worker.library.sketch import fill_for_program, placeholder
from worker.robot import status as st
from worker.sandbox.policy import check_source
from worker.search.core import Brief, CandidateRecord, Proposal

from . import programs as prog

log = logging.getLogger(__name__)

NEIGHBOUR_AWARE_YAW = """
def choose_grasp_yaw(face_points_xy, current_yaw, neighbours_xy):
    # The open fingers reach about 4.5 cm either side of the grasp centre along the gripper's y axis.
    # Of the two finger lines that grip a square face, take the one whose fingers stay farther from
    # nearby objects (when that differs by more than 1 cm), else the one needing less wrist turn.
    base = edge_yaw(face_points_xy)
    centre = face_points_xy.mean(axis=0)
    lines = []
    for yaw in (base, base + math.pi / 2.0):
        reach = 0.045 * np.array([math.sin(yaw), -math.cos(yaw)])
        fingers = [centre + reach, centre - reach]
        clearance = min([np.linalg.norm(f - np.asarray(n)) for f in fingers for n in neighbours_xy] or [1.0])
        turn = abs((yaw - current_yaw + math.pi / 2.0) % math.pi - math.pi / 2.0)
        lines.append((clearance, -turn, yaw))
    lines.sort(reverse=True)
    if abs(lines[0][0] - lines[1][0]) < 0.01:
        lines.sort(key=lambda item: -item[1])
    yaw = lines[0][2]
    return current_yaw + ((yaw - current_yaw + math.pi / 2.0) % math.pi - math.pi / 2.0)
"""

#: Constant-name fragments and what raising or lowering them means, for the mutation hypotheses.
HEIGHT_WORDS = ("HEIGHT", "CLEARANCE", "APPROACH", "LIFT", "ABOVE", "STANDOFF", "GAP")
DEPTH_WORDS = ("BELOW_TOP", "DEPTH", "BAND")
SYNONYMS = {
    "cube": ["block", "box"],
    "can": ["cylinder", "tin"],
    "bowl": ["dish"],
    "plate": ["dish"],
    "basket": ["bin", "container"],
    "drawer": ["drawer of the cabinet"],
    "handle": ["grip"],
}
COLOURS = ("red", "green", "blue", "black", "white", "yellow", "orange")


@dataclass
class Repair:
    """A change to try, with the hypothesis it tests and the failure it answers."""

    key: str  # identity for de-duplication and elimination
    hypothesis: str
    code: str
    rule: str  # which repair rule (or "mutation"); findings() turns rules into skills
    params: dict


def _digest(code: str) -> str:
    return hashlib.sha1(code.encode()).hexdigest()


def candidate_problems(code: str) -> list[str]:
    """Why a candidate program would fail before it does anything useful, found without running it:
    the sandbox policy (worker.sandbox.policy.check_source: imports, dunders, syntax ...) and calls of
    the program's own functions with the wrong arguments (worker.agents.programs.call_arity_problems).
    Each problem as "line N: message"; empty when the candidate may run."""
    problems = [f"line {v.line}: {v.message}" for v in check_source(code)]
    if not problems:
        problems = [f"line {p['line']}: {p['message']}" for p in prog.call_arity_problems(code)]
    return problems


class OfflineSearchAgent:
    name = "offline"

    def __init__(self, seed: int = 0):
        self.seed = seed
        #: Candidates checked and dropped before they cost episodes (candidate_problems, skill
        #: sketches that do not fit the program): [{"round", "hypothesis", "reason"}].
        self.dropped: list[dict] = []

    def _drop(self, brief: Brief, hypothesis: str, reason: str) -> None:
        self.dropped.append({"round": brief.round, "hypothesis": hypothesis, "reason": reason})
        log.warning(
            "%s round %s: dropped candidate %r before running it: %s", brief.task_key, brief.round, hypothesis, reason
        )

    def _checked(self, brief: Brief, proposals: list[Proposal]) -> list[Proposal]:
        """The proposals that pass candidate_problems; the others are dropped with their reason."""
        kept = []
        for proposal in proposals:
            problems = candidate_problems(proposal.code)
            if problems:
                self._drop(brief, proposal.hypothesis, "; ".join(problems[:3]))
            else:
                kept.append(proposal)
        return kept

    # -- round 0 ------------------------------------------------------------------------------------
    def first_program(self, brief: Brief, workbench=None) -> tuple[str, str]:
        """(program, where it came from): the reference program, else the templates of the instruction's
        steps composed into one program, with the library's skills applied to each step
        (worker.agents.programs.zero_shot_program): skills retrieved for each step's own words when a
        ``workbench`` is given (``workbench.skills``), else the brief's skills (retrieved for the whole
        instruction)."""
        if brief.starter:
            return brief.starter, "the task's reference program"
        retrieve = (lambda text: workbench.skills(text, 5)) if workbench is not None else None
        code, origin, _ = prog.zero_shot_program(brief.instruction, brief.skills, retrieve)
        return code, origin

    def propose(self, brief: Brief, workbench=None) -> list[Proposal]:
        rng = random.Random(f"{self.seed}:{brief.task_key}:{brief.round}")
        if brief.round == 0:
            code, origin = self.first_program(brief)
            first = Proposal(f"start from {origin}", code, params={"rule": "start"})
            extra = self._mutations(code, None, rng, brief.k - 1, set())
            return self._checked(
                brief, [first] + [Proposal(r.hypothesis, r.code, None, {"rule": r.rule, **r.params}) for r in extra]
            )
        seen = {_digest(s.code) for s in brief.survivors}
        eliminated = {e.split(" (")[0] for e in brief.eliminated}
        wanted = brief.k - 1 if brief.mode == "search" else 1
        repairs: list[tuple[Repair, CandidateRecord]] = []
        used_keys: set[str] = set()
        for survivor in brief.survivors:  # best first: a repair goes to the best program it fits
            for repair in self._repairs_for(survivor, brief):
                if repair.key in used_keys or repair.hypothesis in eliminated or _digest(repair.code) in seen:
                    continue
                problems = candidate_problems(repair.code)
                if problems:  # checked here, so the next repair takes its place in the round
                    self._drop(brief, repair.hypothesis, "; ".join(problems[:3]))
                    continue
                used_keys.add(repair.key)
                seen.add(_digest(repair.code))
                repairs.append((repair, survivor))
        if brief.mode == "search" and brief.survivors:
            best = brief.survivors[0]
            for repair in self._mutations(best.code, best, rng, wanted, eliminated):
                if _digest(repair.code) not in seen:
                    seen.add(_digest(repair.code))
                    repairs.append((repair, best))
        checked = self._checked(
            brief, [Proposal(r.hypothesis, r.code, parent.ref, {"rule": r.rule, **r.params}) for r, parent in repairs]
        )
        return checked[:wanted]

    # -- repairs matched on trace signals -----------------------------------------------------------
    def _repairs_for(self, candidate: CandidateRecord, brief: Brief) -> list[Repair]:
        out: list[Repair] = []
        failed = candidate.failed
        if not failed:
            return out
        consts = prog.constants(candidate.code)
        funcs = prog.functions(candidate.code)
        statuses = {s for e in failed for s in e.signals.get("statuses", [])}
        blocked = "\n".join(m for e in failed for m in e.signals.get("blocked_by", []))  # one message per line
        errors = " ".join(e.error for e in failed)
        n = len(failed)

        def knob(key: str, hypothesis: str, rule: str, name: str, value) -> Repair:
            """A repair that sets one constant of the program."""
            return Repair(key, hypothesis, prog.set_constants(candidate.code, {name: value}), rule, {name: value})

        # Library skills first (validated by re-execution, approved by a person): those whose sketch
        # defines one of this program's functions and whose failure signature matches these failures.
        # A name is not a contract: a sketch's locate_box(camera_name) is not the program's
        # locate_box(prompt, cam), and swapping it in made every call raise TypeError on every seed.
        # The swapped function must accept every call the program makes to it.
        before = {(p["message"]) for p in prog.call_arity_problems(candidate.code)}
        for skill in brief.skills:
            sketch = skill.get("code_sketch") or ""
            signature = read_signature(skill.get("failure_signature"))
            for fname in funcs:
                if f"def {fname}(" in sketch and signature_applies(signature, [e.signals for e in failed]):
                    try:
                        filled = fill_for_program(sketch, skill.get("placeholders"), consts)
                        code = prog.replace_function(candidate.code, prog.function_source(filled, fname))
                    except (KeyError, ValueError, SyntaxError):
                        continue
                    if code == candidate.code:
                        continue
                    name = skill.get("name")
                    broken = [p for p in prog.call_arity_problems(code) if p["message"] not in before]
                    if broken:
                        self._drop(
                            brief,
                            f"apply skill '{name}' to {fname}()",
                            f"the skill's {fname}() does not accept the program's calls: line {broken[0]['line']}: "
                            f"{broken[0]['message']}",
                        )
                        continue
                    hypothesis = f"apply skill '{name}': {skill.get('repair_strategy', '')[:120]}"
                    out.append(
                        Repair(
                            f"skill:{name}",
                            hypothesis,
                            code,
                            f"skill:{name}",
                            {"skill": skill.get("id"), "retrieval": skill.get("retrieval_id")},
                        )
                    )

        # A finger lands on a neighbouring object: choose the grasp line that keeps fingers clear.
        if "choose_grasp_yaw" in funcs and self._finger_hits_object(blocked):
            code = prog.replace_function(candidate.code, NEIGHBOUR_AWARE_YAW)
            if code != candidate.code:
                hypothesis = (
                    f"{n} failed seeds: the open fingers would meet occupied space above the support surface "
                    "(PLANNING_ERROR naming a finger): grip across the faces whose fingers stay clear of neighbours"
                )
                out.append(Repair("finger_clearance", hypothesis, code, "finger_clearance", {}))

        # A prompt finds nothing: ask for the object another way.
        for name, value in consts.items():
            if not name.endswith("PROMPT") or not isinstance(value, str):
                continue
            missing = (
                any(e.signals.get("detections_by_prompt", {}).get(value) == 0 for e in failed)
                or f"no '{value}'" in errors
            )
            if missing:
                for alt in self._prompt_alternatives(value, brief.instruction)[:2]:
                    out.append(
                        knob(
                            f"prompt:{name}={alt}",
                            f"'{value}' finds nothing in the image on {n} seeds: ask for '{alt}'",
                            "prompt_alternative",
                            name,
                            alt,
                        )
                    )

        numeric = {k: v for k, v in consts.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        # The arm cannot reach a pose: lower the heights and stand-offs that put it there.
        if st.IK_FAILED in statuses:
            for name, value in numeric.items():
                if any(w in name for w in HEIGHT_WORDS) and value > 0:
                    new = round(value * 0.7, 4)
                    out.append(
                        knob(
                            f"ik:{name}={new}",
                            f"IK_FAILED on {n} seeds: {name} {value} -> {new} keeps targets within reach",
                            "reach",
                            name,
                            new,
                        )
                    )
                elif name.startswith("TOWARD") and value > 0:
                    new = round(value * 1.4, 4)
                    out.append(
                        knob(
                            f"ik:{name}={new}",
                            f"IK_FAILED on {n} seeds: {name} {value} -> {new} moves targets towards the robot",
                            "reach",
                            name,
                            new,
                        )
                    )
        # The fingers closed on nothing: grip deeper, or judge the top face more loosely.
        if st.GRASP_EMPTY in statuses or "missed" in errors:
            for name, value in numeric.items():
                if any(w in name for w in DEPTH_WORDS) and value > 0:
                    new = round(value * 1.5, 4)
                    out.append(
                        knob(
                            f"grasp:{name}={new}",
                            f"the gripper closed on nothing on {n} seeds: {name} {value} -> {new}",
                            "grasp_depth",
                            name,
                            new,
                        )
                    )
        # Moves refused or stopped by the scene: give them more room.
        refused = st.PLANNING_ERROR in statuses and not self._finger_hits_object(blocked)
        if refused or st.COLLISION in statuses or st.NOT_REACHED in statuses:
            for name, value in numeric.items():
                if any(w in name for w in ("CLEARANCE", "ABOVE", "LIFT", "STANDOFF", "GAP")) and value > 0:
                    new = round(value * 1.4, 4)
                    out.append(
                        knob(
                            f"room:{name}={new}",
                            f"moves blocked or stopped by the scene on {n} seeds: {name} {value} -> {new}",
                            "clearance",
                            name,
                            new,
                        )
                    )
        return out

    @staticmethod
    def _finger_hits_object(messages: str) -> bool:
        """Whether a finger would meet perceived occupied space standing on the support surface (a
        neighbouring object), not the surface itself or the other arm. Reads the planner's messages
        (worker.robot.api_motion): "arm0 left finger would meet occupied space at [x, y, z] m, seen by
        camera agentview, 0.031 m above the support surface"."""
        for line in re.split(r";|\n", messages):
            hit = BLOCKED_FINGER.search(line)
            if hit and float(hit.group("height")) > NEIGHBOUR_HEIGHT:
                return True
        return False

    @staticmethod
    def _prompt_alternatives(prompt: str, instruction: str) -> list[str]:
        words = prompt.split()
        alternatives = []
        bare = [w for w in words if w not in COLOURS]
        if bare != words and bare:
            alternatives.append(" ".join(bare))
        if len(words) > 1:
            alternatives.append(words[-1])
        for word in words:
            for synonym in SYNONYMS.get(word, []):
                alternatives.append(prompt.replace(word, synonym))
        parsed = prog.parse_instruction(instruction)
        if parsed:
            alternatives.extend(p for p in parsed[1] if p != prompt)
        return list(dict.fromkeys(a for a in alternatives if a and a != prompt))

    # -- parameter mutations ------------------------------------------------------------------------
    def _mutations(
        self, code: str, parent: CandidateRecord | None, rng: random.Random, count: int, eliminated: set
    ) -> list[Repair]:
        numeric = {
            k: v
            for k, v in prog.constants(code).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v != 0
        }
        options = []
        for name, value in sorted(numeric.items()):
            for factor in (0.7, 0.85, 1.2, 1.4):
                new = round(value * factor, 4)
                hypothesis = f"{name} {value} -> {new}"
                if hypothesis not in eliminated:
                    options.append(
                        Repair(
                            f"mut:{name}={new}",
                            hypothesis,
                            prog.set_constants(code, {name: new}),
                            "mutation",
                            {name: new},
                        )
                    )
        rng.shuffle(options)
        chosen, used = [], set()
        for option in options:  # one knob per candidate, different knobs first
            name = option.key.split(":")[1].split("=")[0]
            if name in used and len(used) < len(numeric):
                continue
            used.add(name)
            chosen.append(option)
            if len(chosen) >= count:
                break
        return chosen

    # -- findings -> proposed skills ----------------------------------------------------------------
    def findings(self, first: CandidateRecord, best: CandidateRecord, everything: list[CandidateRecord]) -> list[dict]:
        """Skill proposals for the repairs on the best program's lineage that flipped seeds."""
        by_ref = {c.ref: c for c in everything}
        out = []
        node = best
        while node is not None and node.parent is not None:
            parent = by_ref.get(node.parent)
            if parent is None:
                break
            rule = node.params.get("rule", "")
            # A library skill that worked again is evidence for that skill (its use is logged as a win), not a new one.
            repaired = rule not in ("mutation", "start", "") and not rule.startswith("skill:")
            if repaired and node.success_rate > parent.success_rate:
                out.append(self._skill_from(rule, parent, node))
            node = parent
        return out

    def _skill_from(self, rule: str, before: CandidateRecord, after: CandidateRecord) -> dict:
        fixed = sorted({e.seed for e in before.failed} - {e.seed for e in after.failed})
        passing = sorted(e.seed for e in before.episodes if e.success)
        signals = [e.signals for e in before.failed if e.seed in fixed]
        statuses = sorted({s for sig in signals for s in failed_call_statuses(sig)})
        blocked = [b for sig in signals for b in sig.get("blocked_by", [])][:3]
        texts = RULE_TEXT.get(rule.split(":")[0], RULE_TEXT["mutation"])
        placeholders = {}
        if rule == "finger_clearance":
            sketch, placeholders = prog.self_contained(NEIGHBOUR_AWARE_YAW, after.code)
        else:
            knobs = {k: v for k, v in after.params.items() if k != "rule"}
            was = prog.constants(before.code)
            sketch = "\n".join(f"{k} = {placeholder(k)}" for k in knobs)
            placeholders = {
                k: {"default": v, "doc": f"was {was.get(k)!r} when the seeds failed"} for k, v in knobs.items()
            }
        return {
            "name": texts["name"],
            "description": texts["description"],
            "kind": texts["kind"],
            "failure_signature": {"symptom": texts["symptom"], "statuses": statuses, "blocked_by": blocked},
            "when_to_apply": texts["when"],
            "when_not_to_apply": texts["when_not"],
            "repair_strategy": after.hypothesis,
            "code_sketch": sketch,
            "placeholders": placeholders,
            "evidence": {"seeds_flipped": fixed, "before": before.success_rate, "after": after.success_rate},
            "provenance": {
                "before_candidate": before.ref,
                "after_candidate": after.ref,
                "before_program": before.code,
                "after_program": after.code,
                "claimed_seeds": fixed,
                "passing_seeds": passing,
            },
        }


#: A finger's blocked message in the planner's words, with the height of the point above the support.
BLOCKED_FINGER = re.compile(
    r"finger would meet occupied space\b.*?(?P<height>-?\d+(?:\.\d+)?) m above the support surface"
)
#: Occupied space more than this (m) above the support surface is an object standing on it, not the
#: surface (the support estimate is within ~5 mm, worker.robot.occupancy.PerceivedScene.support_height).
NEIGHBOUR_HEIGHT = 0.01

RULE_TEXT = {
    "finger_clearance": {
        "name": "Grip across the faces whose fingers clear the neighbours",
        "description": "When objects stand close together, choose the finger line (of the equivalent grasp yaws) "
        "that keeps both open fingers away from nearby objects.",
        "kind": "grasp constraint",
        "symptom": "the approach to a top-down grasp is refused with PLANNING_ERROR: a finger would meet "
        "occupied space above the support surface (a neighbouring object); close_gripper then reports GRASP_EMPTY",
        "when": "top-down grasps of boxes or cubes with another object within about 8 cm",
        "when_not": "round objects (every yaw is equivalent) or when the neighbour is what you mean to push",
    },
    "prompt_alternative": {
        "name": "Re-phrase a prompt that finds nothing",
        "description": "A text prompt that returns no detection is replaced by a simpler or synonymous phrase "
        "(drop colours, use the head noun, use the instruction's wording).",
        "kind": "perception prompt",
        "symptom": "segment_text_prompt returns NO_DETECTION and the program stops with 'no ... in view'",
        "when": "NO_DETECTION for an object the instruction names",
        "when_not": "the object is really out of view (then move the camera or the arm, not the words)",
    },
    "reach": {
        "name": "Keep targets within the arm's reach",
        "description": "Lower approach heights and stand-offs, or move release points towards the robot, when IK "
        "cannot reach them.",
        "kind": "motion primitive",
        "symptom": "move_to_pose or solve_ik returns IK_FAILED for poses far from the base or high above the table",
        "when": "IK_FAILED on approach, carry or release poses",
        "when_not": "IK_FAILED because of an orientation the wrist cannot take (turn the grasp instead)",
    },
    "grasp_depth": {
        "name": "Grip deeper when the fingers close on air",
        "description": "Move the grasp point further below the object's top, or widen the band that defines the "
        "top face.",
        "kind": "grasp constraint",
        "symptom": "close_gripper reports GRASP_EMPTY (width under 5 mm) after a top-down approach",
        "when": "tall objects grasped from above whose top rim the fingers slide off",
        "when_not": "the approach itself failed (fix that first)",
    },
    "clearance": {
        "name": "Give blocked moves more room",
        "description": "Raise carry heights, stand-offs or release gaps when moves are refused or stopped by the "
        "scene.",
        "kind": "motion primitive",
        "symptom": "PLANNING_ERROR (a link would meet occupied space) or COLLISION (stopped by contact, with "
        "the force felt) during transport",
        "when": "moves over bins, drawers or other objects",
        "when_not": "deliberate contact moves (pushing, wiping)",
    },
    "mutation": {
        "name": "Tuned parameter",
        "description": "A program constant changed by search that raised the success rate.",
        "kind": "debugging workflow",
        "symptom": "failures without a specific signature",
        "when": "similar programs on similar tasks",
        "when_not": "tasks with different geometry",
    },
}
