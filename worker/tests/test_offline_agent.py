"""The offline search agent's decisions from trace signals alone (no simulator): which repairs a round
proposes, that library skills come first, and which repairs become skill proposals."""

import math
from pathlib import Path

import numpy as np

from worker.agents import programs as prog
from worker.agents.offline import (
    FINGER_LINE_MARK,
    RULE_SOURCES,
    RULE_TEXT,
    OfflineSearchAgent,
    finger_line_prelude,
    with_finger_line_prelude,
)
from worker.sandbox.policy import check_source
from worker.search.core import Brief, CallSummary, CandidateRecord, EpisodeSummary, trace_signals
from worker.search.local import SearchOutcome

STACK = (Path(__file__).resolve().parents[1] / "programs" / "robosuite_stack.py").read_text()
#: The planner's words when a finger of the grasp pose would land on the neighbouring cube (perceived).
FINGER_ON_CUBE = (
    "the target configuration is in occupied space: arm0 right finger would meet occupied space at "
    "[0.031, 0.087, 0.871] m, seen by camera agentview, 0.043 m above the support surface"
)
#: ... and when it would only graze the table top (the support surface itself).
FINGER_ON_TABLE = (
    "the target configuration is in occupied space: arm0 right finger would meet occupied space at "
    "[0.031, 0.087, 0.829] m, seen by camera agentview, 0.002 m above the support surface"
)


def episode(seed, success, blocked=(), error=""):
    """A debug episode; a failed one approaches (refused with PLANNING_ERROR, naming each ``blocked``
    pair) and closes the gripper on nothing. Its signals come from the search's extractor."""
    calls = []
    if not success:
        refusals = [
            CallSummary(2 + i, 2 + i, "move_to_pose", "PLANNING_ERROR", 40, message=m) for i, m in enumerate(blocked)
        ] or [CallSummary(2, 2, "move_to_pose", "PLANNING_ERROR", 40)]
        calls = [
            CallSummary(1, 1, "move_to_pose", "OK", 38),
            *refusals,
            CallSummary(9, 9, "close_gripper", "GRASP_EMPTY", 44, result=0.001),
        ]
    status = "OK" if success else "EXCEPTION"
    signals = trace_signals(calls, status, error)
    return EpisodeSummary(seed=seed, success=success, status=status, error=error, signals=signals)


def stack_record(ref=1, code=STACK, **kw):
    """The Stack reference program as round 0 left it: two seeds fail because a finger lands on the green cube."""
    episodes = [
        episode(101, True),
        episode(102, True),
        episode(108, False, [FINGER_ON_CUBE], error="RuntimeError: missed the red cube"),
        episode(120, False, [FINGER_ON_CUBE], error="RuntimeError: missed the red cube"),
    ]
    return CandidateRecord(ref=ref, round=0, index=0, hypothesis="start", code=code, episodes=episodes, **kw)


def brief(survivors, skills=(), k=3):
    return Brief(
        task_key="robosuite:Stack",
        instruction="stack the red cube on the green cube",
        arms=1,
        cameras=("agentview",),
        round=1,
        k=k,
        debug_seeds=(101, 102, 108, 120),
        survivors=survivors,
        eliminated=[],
        skills=list(skills),
    )


def test_a_finger_that_only_meets_the_support_surface_is_not_a_neighbour_problem():
    record = stack_record()
    table = CandidateRecord(
        **{
            **record.__dict__,
            "episodes": [
                episode(101, True),
                episode(108, False, [FINGER_ON_TABLE], error="RuntimeError: missed the red cube"),
                episode(120, False, [FINGER_ON_TABLE], error="RuntimeError: missed the red cube"),
            ],
        }
    )
    proposals = OfflineSearchAgent().propose(brief([table]))
    assert proposals and not any(p.params.get("rule") == "finger_clearance" for p in proposals)
    assert OfflineSearchAgent._finger_hits_object(FINGER_ON_CUBE)
    assert not OfflineSearchAgent._finger_hits_object(FINGER_ON_TABLE)
    assert not OfflineSearchAgent._finger_hits_object("arm1 hand would meet arm0 link6 at [0.1, 0.2, 0.3] m")
    # The hand counts with the fingers (the planner's words on Stack seed 114).
    hand = (
        "the target configuration is in occupied space: arm0 hand would meet occupied space at "
        "[0.489, 0.042, -0.059] m, seen by camera agentview, 0.051 m above the support surface"
    )
    assert OfflineSearchAgent._finger_hits_object(hand)
    assert not OfflineSearchAgent._finger_hits_object(hand.replace("0.051 m above", "0.004 m above"))


def test_fingers_blocked_on_several_seeds_give_the_finger_clearance_repair_first():
    proposals = OfflineSearchAgent().propose(brief([stack_record()]))
    assert proposals[0].params["rule"] == "finger_clearance" and proposals[0].parent == 1
    assert proposals[0].code == with_finger_line_prelude(STACK) and proposals[0].code.endswith(STACK)
    assert len({p.code for p in proposals}) == len(proposals) == 2  # K - 1 (the floor is added by the driver)


#: A library skill's sketch that swaps a function the Stack program defines.
PICKY_YAW = "def choose_grasp_yaw(face_points_xy, current_yaw, neighbours_xy):\n    return current_yaw + math.pi / 2.0"


def test_a_library_skill_with_a_matching_signature_comes_before_the_built_in_rules():
    skill = {
        "id": 7,
        "name": "fingers-clear-neighbours",
        "retrieval_id": 3,
        "repair_strategy": "choose the clear finger line",
        "failure_signature": {"symptom": "finger on a neighbour", "statuses": ["PLANNING_ERROR"]},
        "code_sketch": PICKY_YAW,
        "placeholders": {},
    }
    proposals = OfflineSearchAgent().propose(brief([stack_record()], skills=[skill]))
    assert proposals[0].params == {"rule": "skill:fingers-clear-neighbours", "skill": 7, "retrieval": 3}
    # A skill whose signature names other failures is not applied.
    other = {**skill, "failure_signature": {"statuses": ["NO_DETECTION"]}}
    assert OfflineSearchAgent().propose(brief([stack_record()], skills=[other]))[0].params["rule"] == "finger_clearance"
    # A signature in the older nested shape is still read.
    nested = {
        **skill,
        "failure_signature": {"symptom": "finger on a neighbour", "signals": {"statuses": ["planning_error"]}},
    }
    assert OfflineSearchAgent().propose(brief([stack_record()], skills=[nested]))[0].params["skill"] == 7


def test_a_placeholder_the_program_does_not_define_takes_the_skills_default():
    sketch = "def edge_yaw(points_xy):\n    return {{YAW_OFFSET}}"
    skill = {
        "id": 8,
        "name": "fixed-yaw",
        "failure_signature": {},
        "code_sketch": sketch,
        "placeholders": {"YAW_OFFSET": {"default": 0.25, "doc": "rad"}},
    }
    proposals = OfflineSearchAgent().propose(brief([stack_record()], skills=[skill], k=4))
    applied = next(p for p in proposals if p.params.get("skill") == 8)
    assert "return 0.25" in applied.code


def test_findings_turn_a_repair_that_flipped_seeds_into_a_skill_proposal_but_not_a_reused_skill():
    agent = OfflineSearchAgent()
    before = stack_record(ref=1)
    fixed_code = with_finger_line_prelude(STACK)
    after = CandidateRecord(
        ref=2,
        round=1,
        index=1,
        hypothesis="grip across the clear faces",
        code=fixed_code,
        parent=1,
        episodes=[episode(s, True) for s in (101, 102, 108, 120)],
        params={"rule": "finger_clearance"},
    )
    [skill] = agent.findings(before, after, [before, after])
    assert skill["provenance"]["claimed_seeds"] == [108, 120] and skill["provenance"]["passing_seeds"] == [101, 102]
    assert skill["provenance"]["before_program"] == STACK and skill["provenance"]["after_program"] == fixed_code
    assert skill["failure_signature"]["statuses"] and skill["kind"] == "grasp constraint"
    # The sketch is the prelude: it stands on its own and names no function of the program.
    assert skill["code_sketch"] == finger_line_prelude(["move_to_pose"]).strip("\n")
    assert "choose_grasp_yaw" not in skill["code_sketch"] and not check_source(skill["code_sketch"])
    mutation = CandidateRecord(
        **{
            **after.__dict__,
            "code": prog.set_constants(STACK, {"APPROACH_HEIGHT": 0.12}),
            "params": {"rule": "clearance", "APPROACH_HEIGHT": 0.12},
        }
    )
    [knob] = agent.findings(before, mutation, [before, mutation])
    assert knob["code_sketch"] == "APPROACH_HEIGHT = {{APPROACH_HEIGHT}}"
    assert knob["placeholders"]["APPROACH_HEIGHT"]["default"] == 0.12
    reused = CandidateRecord(**{**after.__dict__, "params": {"rule": "skill:fingers-clear-neighbours", "skill": 7}})
    assert agent.findings(before, reused, [before, reused]) == []


#: A program with no helper functions at all: one top-down pick with arm 1, its prompt a literal.
PLAIN = """obs = get_observation(["agentview"])
cam = obs["agentview"]
dets = segment_text_prompt(cam["images"]["rgb"], "red block")
if not dets:
    raise RuntimeError("no 'red block' in view")
down = np.array([0.0, 1.0, 0.0, 0.0])
move_to_pose_arm1(np.array([0.1, 0.0, 0.95]), down)
close_gripper_arm1()
"""


def test_the_finger_signal_gives_the_prelude_to_a_program_with_no_grasp_function():
    record = stack_record(code=PLAIN)
    proposals = OfflineSearchAgent().propose(brief([record]))
    repair = next(p for p in proposals if p.params["rule"] == "finger_clearance")
    assert repair.code.startswith(FINGER_LINE_MARK) and repair.code.endswith(PLAIN)
    assert "move_to_pose_arm1 = finger_line_retry(move_to_pose_arm1, finger_line_turns_arm1)" in repair.code
    assert "move_to_pose =" not in repair.code  # only the pose moves the program calls are wrapped
    assert with_finger_line_prelude(repair.code) == repair.code  # never given twice
    # Without the finger signal (a plain refusal) there is no finger_clearance repair.
    plain = CandidateRecord(
        **{**record.__dict__, "episodes": [episode(101, True), episode(108, False, ["no path found"])]}
    )
    assert not any(p.params["rule"] == "finger_clearance" for p in OfflineSearchAgent().propose(brief([plain])))


def test_the_prelude_passes_the_sandbox_policy_on_every_reference_program():
    programs = sorted((Path(__file__).resolve().parents[1] / "programs").glob("*.py"))
    wrapped = [p for p in programs if with_finger_line_prelude(p.read_text()) != p.read_text()]
    assert wrapped
    for path in wrapped:
        assert check_source(with_finger_line_prelude(path.read_text())) == [], path.name


def run_prelude(moves, statuses):
    """Run the prelude for ``moves`` with each pose move faked: it records (name, position, quaternion)
    and returns the next of ``statuses``. Returns the namespace and the calls."""
    calls, answers = [], iter(statuses)

    def fake(name):
        def move(position, quaternion_wxyz, collision_check=True):
            calls.append((name, tuple(position), np.asarray(quaternion_wxyz, dtype=float)))
            return next(answers)

        return move

    scope = {"np": np, "math": math, **{m: fake(m) for m in moves}}
    exec(compile(finger_line_prelude(moves), "<program>", "exec"), scope)
    return scope, calls


def top_down(yaw):
    """The Stack program's top_down_quaternion (wxyz): gripper z down, fingers turned by yaw."""
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def test_the_wrapper_turns_the_fingers_about_the_approach_axis_and_keeps_the_turn():
    scope, calls = run_prelude(["move_to_pose"], ["REACHED", "PLANNING_ERROR", "REACHED", "REACHED", "REACHED"])
    above, grasp = (0.1, 0.0, 0.95), (0.1, 0.0, 0.85)
    q = top_down(0.3)
    assert scope["move_to_pose"](above, q) == "REACHED"
    assert scope["move_to_pose"](grasp, q) == "REACHED"  # refused, then reached turned
    assert np.allclose(calls[1][2], q)
    turned = calls[2][2]
    # A top-down grasp turned 90 degrees about its approach axis is the top-down grasp at yaw -/+ 90 degrees.
    assert np.allclose(turned, top_down(0.3 - math.pi / 2.0)) or np.allclose(turned, -top_down(0.3 - math.pi / 2.0))
    assert calls[2][1] == grasp
    # Later moves asked with the same orientation (the carry) use the turn at once, -q as well.
    assert scope["move_to_pose"]((0.1, 0.0, 1.0), q) == "REACHED"
    assert scope["move_to_pose"]((0.2, 0.0, 1.0), -q) == "REACHED"
    assert np.allclose(calls[3][2], turned) and np.allclose(calls[4][2], turned) and len(calls) == 5


def test_the_wrapper_tries_minus_90_and_returns_the_refusal_when_no_turn_moves_the_arm():
    scope, calls = run_prelude(["move_to_pose_arm0"], ["PLANNING_ERROR", "IK_FAILED", "REACHED"])
    q = top_down(0.0)
    assert scope["move_to_pose_arm0"]((0.0, 0.0, 0.9), q) == "REACHED"
    assert np.allclose(calls[2][2], top_down(math.pi / 2.0)) or np.allclose(calls[2][2], -top_down(math.pi / 2.0))
    scope, calls = run_prelude(["move_to_pose"], ["PLANNING_ERROR", "PLANNING_ERROR", "PLANNING_ERROR", "OK"])
    assert scope["move_to_pose"]((0.0, 0.0, 0.9), q) == "PLANNING_ERROR" and len(calls) == 3
    scope["move_to_pose"]((0.0, 0.0, 0.9), q)
    assert np.allclose(calls[3][2], q)  # nothing remembered from a failed retry
    # Other failures are not retried.
    scope, calls = run_prelude(["move_to_pose"], ["IK_FAILED"])
    assert scope["move_to_pose"]((0.0, 0.0, 0.9), q) == "IK_FAILED" and len(calls) == 1


def test_a_prompt_that_finds_nothing_is_found_in_the_segment_call_and_rephrased():
    sources = prog.prompt_sources(PLAIN)
    assert [(s["name"], s["value"]) for s in sources] == [(None, "red block")]
    record = stack_record(code=PLAIN)
    record.episodes[2].error = "RuntimeError: no 'red block' in view"
    proposals = OfflineSearchAgent().propose(brief([record], k=6))
    rephrased = [p for p in proposals if p.params["rule"] == "prompt_alternative"]
    assert rephrased and 'segment_text_prompt(cam["images"]["rgb"], \'block\')' in rephrased[0].code
    expected = {"rule": "prompt_alternative", "PROMPT": "block", "prompt_was": "red block", "line": 3}
    assert rephrased[0].params == expected
    # A literal prompt that flipped seeds becomes a skill whose placeholder says what the prompt was.
    after = CandidateRecord(
        ref=2,
        round=1,
        index=0,
        hypothesis=rephrased[0].hypothesis,
        code=rephrased[0].code,
        parent=1,
        episodes=[episode(s, True) for s in (101, 102, 108, 120)],
        params=rephrased[0].params,
    )
    [skill] = OfflineSearchAgent().findings(record, after, [record, after])
    assert skill["code_sketch"] == "PROMPT = {{PROMPT}}"
    assert skill["placeholders"] == {"PROMPT": {"default": "block", "doc": "was 'red block' when the seeds failed"}}
    # Through helper parameters and loops to module constants of any name (the Stack program's).
    stack = {(s["name"], s["value"]) for s in prog.prompt_sources(STACK)}
    assert stack == {("PICK_PROMPT", "red cube"), ("PLACE_PROMPT", "green cube"), (None, "table")}
    looped = 'OBJ = "soup can"\ndef look(names):\n    return [segment_text_prompt(0, n) for n in names]\nlook([OBJ])\n'
    assert [(s["name"], s["value"]) for s in prog.prompt_sources(looped)] == [("OBJ", "soup can")]


def test_repairs_tried_lists_every_candidate_a_repair_rule_made():
    parent = stack_record(ref="c1")
    repaired = CandidateRecord(
        ref="c2",
        round=1,
        index=0,
        hypothesis="turn the fingers",
        code=with_finger_line_prelude(STACK),
        parent="c1",
        episodes=[episode(101, True), episode(102, False), episode(108, True), episode(120, True)],
        params={"rule": "finger_clearance"},
    )
    mutated = CandidateRecord(**{**repaired.__dict__, "ref": "c3", "params": {"rule": "mutation", "GAP": 0.1}})
    outcome = SearchOutcome([[parent], [repaired, mutated]], repaired, parent, "target", None, 1.0, [])
    assert outcome.repairs_tried() == [
        {
            "rule": "finger_clearance",
            "hypothesis": "turn the fingers",
            "round": 1,
            "ref": "c2",
            "parent": "c1",
            "parent_debug": 0.5,
            "debug": 0.75,
            "seeds_flipped": [108, 120],
            "seeds_broken": [102],
        }
    ]
    assert set(RULE_SOURCES) == set(RULE_TEXT) - {"mutation"}
    assert RULE_SOURCES["finger_clearance"] == ("robosuite:Stack",)


def test_the_prelude_runs_in_the_sandbox_and_retries_a_refused_move_turned():
    """In the sandbox process (worker.sandbox.host.run_program) with a fake move_to_pose served by the
    host: the first grasp move is refused, the turned one reaches, the carry reuses the turn."""
    from worker.sandbox.host import SandboxLimits, Status, run_program

    asked = []

    def dispatch(name, args, kwargs, line, stack):
        asked.append(np.asarray(args[1], dtype=float))
        return "PLANNING_ERROR" if len(asked) == 1 else "REACHED"

    program = with_finger_line_prelude(
        "q = np.array([0.0, 1.0, 0.0, 0.0])\n"
        "print(move_to_pose(np.array([0.1, 0.0, 0.85]), q))\n"
        "print(move_to_pose(np.array([0.1, 0.0, 1.0]), q))\n"
    )
    api = [{"name": "move_to_pose", "doc": "move"}]
    out = run_program(program, api, dispatch, SandboxLimits(wall_seconds=10, memory_mb=512))
    assert out.status == Status.OK, out.error
    assert out.stdout.split() == ["REACHED", "REACHED"] and len(asked) == 3
    assert np.allclose(asked[0], [0.0, 1.0, 0.0, 0.0]) and np.allclose(asked[1], asked[2])
    assert np.allclose(np.abs(asked[1]), [0.0, math.sqrt(0.5), math.sqrt(0.5), 0.0])


def test_an_approved_prelude_skill_goes_before_the_program_and_the_built_in_rule_is_not_repeated():
    skill = {
        "id": 9,
        "name": "turn-the-finger-line",
        "repair_strategy": "retry refused pose moves turned",
        "failure_signature": {"symptom": "finger on a neighbour", "statuses": ["PLANNING_ERROR"]},
        "code_sketch": finger_line_prelude(["move_to_pose"]).strip(),
        "placeholders": {},
    }
    proposals = OfflineSearchAgent().propose(brief([stack_record()], skills=[skill]))
    assert proposals[0].params == {"rule": "skill:turn-the-finger-line", "skill": 9, "retrieval": None}
    assert proposals[0].code == with_finger_line_prelude(STACK)
    assert not any(p.params.get("rule") == "finger_clearance" for p in proposals)  # same program: not twice
    # A program that calls only arm 1's pose move is not given a prelude that wraps arm 0's.
    plain = stack_record(code=PLAIN)
    assert not any(p.params["rule"].startswith("skill:") for p in OfflineSearchAgent().propose(brief([plain], [skill])))


def test_the_knobs_are_the_constants_that_flow_into_motion_positions():
    stack = prog.motion_constants(STACK)
    # Through helpers' parameters and returns (locate_box -> red_face -> grasp) and local assignments.
    assert {"APPROACH_HEIGHT", "CARRY_HEIGHT", "PLACE_CLEARANCE", "TOP_FACE_BAND"} <= set(stack)
    assert "OBSERVE_TRIES" not in stack  # a loop count: control flow, not data flow
    code = (
        "hover_height = 0.2\n"
        "LABEL_HEIGHT = 0.05  # printed only\n"
        "pose = np.array([0.1, 0.0, 0.8])\n"
        "target = pose + np.array([0.0, 0.0, hover_height])\n"
        "print(LABEL_HEIGHT)\n"
        "move_to_pose_arm1(target, np.array([0.0, 1.0, 0.0, 0.0]))\n"
    )
    assert prog.motion_constants(code) == {"hover_height": 0.2}
    # The reach repair lowers the height that feeds a position, whatever its case, and not the printed one.
    record = stack_record(code=code)
    for e in record.episodes[2:]:
        e.signals["statuses"] = ["IK_FAILED"]
    proposals = OfflineSearchAgent().propose(brief([record], k=6))
    reach = [p for p in proposals if p.params["rule"] == "reach"]
    assert [r.params for r in reach] == [{"rule": "reach", "hover_height": 0.14}]
