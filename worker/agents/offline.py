"""The offline search agent: writes and repairs programs with no language model and no key.

Round 0: the task's reference program, or the template whose kind the instruction names with its
prompts filled from the instruction's noun phrases (worker.agents.programs), plus variations.
Later rounds: for each surviving program, repairs whose failure signature matches its failed seeds'
trace signals, then parameter mutations of the best program (constants scaled), each candidate
carrying one stated hypothesis and none repeating a hypothesis already eliminated. The repairs are
keyed on the robot API and the planner's words, never on one program's function names or on a
simulator:

- finger_clearance: a pose move refused because an open finger or the hand would meet occupied space
  above the support surface (the planner's blocked_by message) -> a prelude that wraps the pose-motion primitives
  the program calls, retrying a refused move with the fingers turned 90 degrees about the approach axis;
- prompt_alternative: a text prompt that finds nothing (detections_by_prompt, or "no '<prompt>'" in the
  error) -> the prompt re-phrased where the program sets it (the literal or module constant that flows
  into a segment_*/detect_* call, found with ast);
- reach / grasp_depth / clearance: IK_FAILED, GRASP_EMPTY, blocked or stalled moves -> one knob scaled,
  the knobs being the numeric constants that flow into motion primitives' positions (see HEIGHT_WORDS).

RULE_SOURCES names the task(s) each family was written from, so a benchmark can report each family on
other tasks (worker.search.local.SearchOutcome.repairs_tried lists every repair candidate). Approved
skills are offered as repairs too, when their failure signature fits the failures: a sketch that defines
a function the program has replaces it, a sketch that is a prelude (it rebinds API primitives the
program calls) goes before it (worker.library reads the signals and signatures and fills the sketch,
as the skills app does). After the search, every repair that flipped seeds becomes a proposed skill
(DESIGN section 5 fields with before/after programs as provenance) for the coordinator to validate.
"""

from __future__ import annotations

import ast
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

#: The pose-motion primitives the finger-line prelude wraps, and which arm each moves (worker.robot.api_motion:
#: each takes (position, quaternion_wxyz, collision_check=True) and RETURNS a status string; it does not raise).
#: move_to_pose_both (two poses in one call) is not wrapped.
POSE_MOVES = {"move_to_pose": 0, "move_to_pose_arm0": 0, "move_to_pose_arm1": 1}
#: The first line of the finger-line prelude; a program that has it is not given it again.
FINGER_LINE_MARK = "# finger-line prelude (offline agent repair finger_clearance):"

FINGER_LINE_HELPERS = (
    FINGER_LINE_MARK
    + """
# a pose move refused with PLANNING_ERROR (e.g. an open finger would land on a neighbouring object) is
# tried again with the gripper turned 90 degrees, then -90, about its approach axis (the gripper's z axis;
# quaternions [w, x, y, z] in the world frame, as the robot API takes them). A turn that moved the arm is
# remembered, so later moves asked with the same orientation (descend, carry) keep the same finger line.


def finger_line_turned(quaternion_wxyz, angle):
    # q * [cos(a/2), 0, 0, sin(a/2)]: q turned by angle (rad) about its own z (approach) axis.
    w, x, y, z = [float(v) for v in quaternion_wxyz]
    c, s = math.cos(angle / 2.0), math.sin(angle / 2.0)
    return np.array([w * c - z * s, x * c + y * s, y * c - x * s, z * c + w * s])


def finger_line_key(quaternion_wxyz):
    # q and -q are the same orientation.
    q = np.asarray(quaternion_wxyz, dtype=float)
    q = -q if q[int(np.argmax(np.abs(q)))] < 0 else q
    return tuple(round(float(v), 4) for v in q)


def finger_line_retry(move, turns):
    # move: a pose-motion primitive; turns: {orientation key: turned quaternion} shared by one arm's moves.
    def retry(position, quaternion_wxyz, collision_check=True):
        key = finger_line_key(quaternion_wxyz)
        if key in turns:
            return move(position, turns[key], collision_check)
        result = move(position, quaternion_wxyz, collision_check)
        if result != "PLANNING_ERROR":
            return result
        for angle in (math.pi / 2.0, -math.pi / 2.0):
            turned = finger_line_turned(quaternion_wxyz, angle)
            outcome = move(position, turned, collision_check)
            if outcome not in ("PLANNING_ERROR", "IK_FAILED"):  # the arm moved with this finger line
                turns[key] = turned
                return outcome
        return result

    return retry
"""
)


def finger_line_prelude(primitives) -> str:
    """The prelude that wraps ``primitives`` (names of POSE_MOVES) with finger_line_retry, each rebound
    to its wrapper after the original is captured (the wrapper holds it); moves of one arm share one
    memory of turns. Uses only ``math`` and ``np`` (what the sandbox predefines, worker.sandbox.policy)."""
    names = [p for p in POSE_MOVES if p in set(primitives)]
    arms = sorted({POSE_MOVES[p] for p in names})
    lines = [f"finger_line_turns_arm{a} = {{}}" for a in arms]
    lines += [f"{p} = finger_line_retry({p}, finger_line_turns_arm{POSE_MOVES[p]})" for p in names]
    return FINGER_LINE_HELPERS + "\n\n" + "\n".join(lines) + "\n"


def pose_moves_called(code: str) -> list[str]:
    """The POSE_MOVES primitives a program names (calls, or passes on), in POSE_MOVES order."""
    used = {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return [p for p in POSE_MOVES if p in used]


def with_finger_line_prelude(code: str) -> str:
    """The program with the finger-line prelude first (for the pose moves it calls); the program itself
    when it calls none or already has the prelude."""
    called = pose_moves_called(code)
    if not called or FINGER_LINE_MARK in code:
        return code
    return finger_line_prelude(called) + "\n\n" + code


#: Which way the knob repairs turn a knob. The knobs themselves come from the program's data flow (module-level
#: numeric constants that feed a motion primitive's position, worker.agents.programs.motion_constants); these
#: words of a knob's name (upper-cased) only say which way changing it moves the gripper, in the vocabulary of
#: manipulation rather than of one program or simulator: a HEIGHT_WORDS knob is a height or stand-off above a
#: target (lowered when IK fails, raised when moves are blocked), a DEPTH_WORDS knob a depth below an object's
#: top (deepened when the fingers close on nothing), a TOWARD knob a step towards the robot (lengthened when
#: IK fails). A knob whose name has none of these words gets no knob repair (its direction is unknown); the
#: parameter mutations still vary it both ways.
HEIGHT_WORDS = ("HEIGHT", "CLEARANCE", "APPROACH", "LIFT", "ABOVE", "STANDOFF", "GAP")
DEPTH_WORDS = ("BELOW_TOP", "DEPTH", "BAND")
#: The HEIGHT_WORDS that give moves more room when raised (the clearance repair).
ROOM_WORDS = ("CLEARANCE", "ABOVE", "LIFT", "STANDOFF", "GAP")
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

            # A sketch that is a prelude (it rebinds, at module level, names the program calls but does
            # not define: robot API primitives, as the finger-line prelude does) goes before the program.
            wrapped = prog.prelude_rebinds(sketch) & prog.names_from_outside(candidate.code)
            if wrapped and signature_applies(signature, [e.signals for e in failed]):
                try:
                    filled = fill_for_program(sketch, skill.get("placeholders"), consts).strip("\n")
                except (KeyError, ValueError, SyntaxError):
                    continue
                if filled in candidate.code:
                    continue
                name = skill.get("name")
                out.append(
                    Repair(
                        f"skill:{name}",
                        f"apply skill '{name}' before the program (it wraps {', '.join(sorted(wrapped))}): "
                        f"{skill.get('repair_strategy', '')[:120]}",
                        filled + "\n\n\n" + candidate.code,
                        f"skill:{name}",
                        {"skill": skill.get("id"), "retrieval": skill.get("retrieval_id")},
                    )
                )

        # A finger or the hand would land on occupied space above the support surface (a neighbouring object):
        # retry refused pose moves with the fingers turned 90 degrees about the approach axis.
        if self._finger_hits_object(blocked):
            code = with_finger_line_prelude(candidate.code)
            if code != candidate.code:
                moves = ", ".join(pose_moves_called(candidate.code))
                hypothesis = (
                    f"{n} failed seeds: the open gripper would meet occupied space above the support surface, "
                    f"a neighbouring object (PLANNING_ERROR naming a finger or the hand): retry refused {moves} "
                    "with the fingers turned 90 degrees about the approach axis, and keep that finger line"
                )
                out.append(Repair("finger_clearance", hypothesis, code, "finger_clearance", {}))

        # A prompt finds nothing: ask for the object another way. The prompts are the text arguments of
        # the program's segment_* / detect_* calls, followed to the literal or module constant they come from.
        for source in prog.prompt_sources(candidate.code):
            value = source["value"]
            missing = (
                any(e.signals.get("detections_by_prompt", {}).get(value) == 0 for e in failed)
                or f"no '{value}'" in errors
            )
            if missing:
                for alt in self._prompt_alternatives(value, brief.instruction)[:2]:
                    where = source["name"] or f"the literal on line {source['line']}"
                    out.append(
                        Repair(
                            f"prompt:{where}={alt}",
                            f"'{value}' finds nothing in the image on {n} seeds: ask for '{alt}'",
                            prog.set_prompt(candidate.code, source, alt),
                            "prompt_alternative",
                            {
                                source["name"] or "PROMPT": alt,
                                "prompt_was": value,
                                **({} if source["name"] else {"line": source["line"]}),
                            },
                        )
                    )

        # The knobs of the reach, grasp-depth and clearance repairs: the module-level numeric constants whose
        # values flow into the position argument of a motion primitive (prog.motion_constants, from the
        # program's data flow); the words of a knob's name only choose the direction (see HEIGHT_WORDS).
        numeric = prog.motion_constants(candidate.code)
        # The arm cannot reach a pose: lower the heights and stand-offs that put it there.
        if st.IK_FAILED in statuses:
            for name, value in numeric.items():
                if any(w in name.upper() for w in HEIGHT_WORDS) and value > 0:
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
                elif name.upper().startswith("TOWARD") and value > 0:
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
                if any(w in name.upper() for w in DEPTH_WORDS) and value > 0:
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
                if any(w in name.upper() for w in ROOM_WORDS) and value > 0:
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
        """Whether a finger or the hand (the gripper) would meet perceived occupied space standing on the
        support surface (a neighbouring object), not the surface itself or the other arm. Reads the
        planner's messages (worker.robot.api_motion): "arm0 left finger would meet occupied space at
        [x, y, z] m, seen by camera agentview, 0.031 m above the support surface"."""
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
            sketch = finger_line_prelude(pose_moves_called(before.code)).strip("\n")
        else:
            knobs = {k: v for k, v in after.params.items() if k not in ("rule", "prompt_was", "line")}
            was = prog.constants(before.code)
            if "prompt_was" in after.params:  # a prompt that was a literal has no constant to read back
                was.update(dict.fromkeys(knobs, after.params["prompt_was"]))
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


#: A gripper link's blocked message in the planner's words (worker.robot.motion names the gripper's links
#: "armN hand", "armN left finger", "armN right finger"), with the height of the point above the support.
#: The hand counts with the fingers: the Panda's hand is long along the finger line, and on robosuite Stack
#: debug seeds 101, 114, 120 and 125 (realistic perception) the grasp move was refused because the hand
#: would meet the neighbouring cube 0.051 m above the table; turning the finger line flipped all four.
BLOCKED_FINGER = re.compile(
    r"(?:finger|hand) would meet occupied space\b.*?(?P<height>-?\d+(?:\.\d+)?) m above the support surface"
)
#: Occupied space more than this (m) above the support surface is an object standing on it, not the
#: surface (the support estimate is within ~5 mm, worker.robot.occupancy.PerceivedScene.support_height).
NEIGHBOUR_HEIGHT = 0.01

#: The task(s) each repair family was written from (git history and docstrings of this module), so a
#: benchmark can report each family's effect on other tasks (worker.search.local.SearchOutcome.repairs_tried).
#: "not from one task": written in the first version of this agent (commit f4963e3) from the constant names
#: of all the reference programs and templates of the time, not from one task's failures.
RULE_SOURCES = {
    "finger_clearance": ("robosuite:Stack",),
    "prompt_alternative": ("not from one task",),
    "reach": ("not from one task",),
    "grasp_depth": ("not from one task",),
    "clearance": ("not from one task",),
}

RULE_TEXT = {
    "finger_clearance": {
        "name": "Turn the finger line when a pose move is refused",
        "description": "When a pose move is refused because an open finger would land on a neighbouring object, "
        "retry it with the gripper turned 90 degrees (then -90) about its approach axis, and keep that turn for "
        "the later moves asked with the same orientation.",
        "kind": "grasp constraint",
        "symptom": "the approach to a top-down grasp is refused with PLANNING_ERROR: a finger or the hand would "
        "meet occupied space above the support surface (a neighbouring object); close_gripper then reports "
        "GRASP_EMPTY",
        "when": "top-down grasps of objects that can be gripped across either pair of faces (boxes, cubes, "
        "cylinders) with another object within about 8 cm",
        "when_not": "objects that can be gripped across one pair of faces only (a handle, a long bar), or "
        "when the neighbour is what you mean to push",
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
