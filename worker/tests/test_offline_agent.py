"""The offline search agent's decisions from trace signals alone (no simulator): which repairs a round
proposes, that library skills come first, and which repairs become skill proposals."""

from pathlib import Path

from worker.agents import programs as prog
from worker.agents.offline import NEIGHBOUR_AWARE_YAW, OfflineSearchAgent
from worker.search.core import Brief, CallSummary, CandidateRecord, EpisodeSummary, trace_signals

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


def test_fingers_blocked_on_several_seeds_give_the_finger_clearance_repair_first():
    proposals = OfflineSearchAgent().propose(brief([stack_record()]))
    assert proposals[0].params["rule"] == "finger_clearance" and proposals[0].parent == 1
    assert "def choose_grasp_yaw(face_points_xy, current_yaw, neighbours_xy)" in proposals[0].code
    assert len({p.code for p in proposals}) == len(proposals) == 2  # K - 1 (the floor is added by the driver)


def test_a_library_skill_with_a_matching_signature_comes_before_the_built_in_rule_that_does_the_same():
    skill = {
        "id": 7,
        "name": "fingers-clear-neighbours",
        "retrieval_id": 3,
        "repair_strategy": "choose the clear finger line",
        "failure_signature": {"symptom": "finger on a neighbour", "statuses": ["PLANNING_ERROR"]},
        "code_sketch": NEIGHBOUR_AWARE_YAW.strip(),
        "placeholders": {},
    }
    proposals = OfflineSearchAgent().propose(brief([stack_record()], skills=[skill]))
    assert proposals[0].params == {"rule": "skill:fingers-clear-neighbours", "skill": 7, "retrieval": 3}
    assert not any(p.params.get("rule") == "finger_clearance" for p in proposals)  # same program: not proposed twice
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
    fixed_code = prog.replace_function(STACK, NEIGHBOUR_AWARE_YAW)
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
    # The sketch stands on its own: the program's helper it calls comes with it.
    assert "def edge_yaw(" in skill["code_sketch"] and "def choose_grasp_yaw(" in skill["code_sketch"]
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
