"""Offline candidates are checked before they cost episodes: the sandbox policy and the arity of calls
to the program's own functions. The case that wasted 7 episodes: the seed skill
cube-top-face-localisation's ``locate_box(camera_name)`` swapped into the Stack program, which calls
``locate_box(prompt, cam)``, so every seed raised ``TypeError: locate_box() takes 1 positional argument``."""

from pathlib import Path

from worker.agents import programs as prog
from worker.agents.offline import OfflineSearchAgent, candidate_problems
from worker.search.core import Proposal

from .test_offline_agent import brief, stack_record

ROOT = Path(__file__).resolve().parents[2]
STACK = (ROOT / "worker" / "programs" / "robosuite_stack.py").read_text()


def _seed_sketch(name: str) -> str:
    return (ROOT / "skills" / "seed" / f"{name}.md").read_text().split("```python\n")[1].split("```")[0]


LOCATE_BOX_SKILL = {
    "id": 11,
    "name": "cube-top-face-localisation",
    "retrieval_id": 4,
    "repair_strategy": "take x, y from the top face and the height from the support beside it",
    "failure_signature": {"statuses": ["GRASP_EMPTY"]},
    "code_sketch": _seed_sketch("cube-top-face-localisation"),
    "placeholders": {
        "OBJECT_PROMPT": {"default": "red cube"},
        "SUPPORT_PROMPT": {"default": "table"},
        "TOP_FACE_BAND": {"default": 0.006},
        "SUPPORT_RADIUS": {"default": 0.12},
        "FALLBACK_HEIGHT": {"default": 0.04},
    },
}


def test_it_finds_calls_with_the_wrong_number_of_arguments_against_the_programs_own_defs():
    code = (
        "def locate(camera_name):\n    return camera_name\n\n"
        "def f(a, b=1, *, c):\n    return a\n\n"
        "locate('agentview', 'red cube')\n"
        "f(1, 2, 3, c=1)\nf(b=2, c=1)\nf(1, d=2, c=3)\nf(1, c=0)\n"
        "def g(locate):\n    return locate(1, 2, 3)\n"  # a parameter shadows the helper: not judged
    )
    problems = prog.call_arity_problems(code)
    assert [(p["line"], p["message"]) for p in problems] == [
        (7, "locate() takes 1 positional argument but 2 were given"),
        (8, "f() takes 2 positional arguments but 3 were given"),
        (9, "f() is missing required argument 'a'"),
        (10, "f() got an unexpected keyword argument 'd'"),
    ]
    for name in ("robosuite_lift", "robosuite_stack", "libero_soup_in_basket", "robosuite_twoarmlift"):
        assert prog.call_arity_problems((ROOT / "worker" / "programs" / f"{name}.py").read_text()) == []


def test_the_locate_box_skill_is_not_swapped_into_a_program_whose_calls_it_cannot_take():
    # The mismatch as it happened: the sketch's function replaces the program's by name alone.
    filled = _seed_sketch("cube-top-face-localisation")
    for key, spec in LOCATE_BOX_SKILL["placeholders"].items():
        filled = filled.replace("{{" + key + "}}", repr(spec["default"]))
    swapped = prog.replace_function(STACK, prog.function_source(filled, "locate_box"))
    assert "locate_box() takes 1 positional argument but 2 were given" in candidate_problems(swapped)[0]

    record = stack_record(code=STACK)
    for e in record.failed:  # the failures the skill's signature names
        e.signals.setdefault("statuses", []).append("GRASP_EMPTY")
    agent = OfflineSearchAgent()
    proposals = agent.propose(brief([record], skills=[LOCATE_BOX_SKILL], k=4))
    assert proposals, "the round still has candidates"
    assert not any(p.params.get("rule", "").startswith("skill:") for p in proposals)
    assert all(candidate_problems(p.code) == [] for p in proposals)
    reason = next(d for d in agent.dropped if "cube-top-face-localisation" in d["hypothesis"])
    assert "locate_box() takes 1 positional argument but 2 were given" in reason["reason"]


def test_a_broken_candidate_is_dropped_with_its_reason_and_never_evaluated(monkeypatch):
    """A candidate that fails the policy or calls a helper wrongly never reaches the evaluator."""
    agent = OfflineSearchAgent()
    broken_policy = STACK.replace("import numpy as np", "import os\nimport numpy as np", 1)
    if broken_policy == STACK:
        broken_policy = "import os\n" + STACK
    broken_arity = STACK + "\nlocate_box(PICK_PROMPT)\n"
    good = STACK
    evaluated = []
    b = brief([stack_record()])
    kept = agent._checked(
        b,
        [Proposal("uses os", broken_policy), Proposal("one argument short", broken_arity), Proposal("fine", good)],
    )
    evaluated.extend(p.hypothesis for p in kept)  # what a driver would run
    assert evaluated == ["fine"]
    reasons = {d["hypothesis"]: d["reason"] for d in agent.dropped}
    assert "import of os is not allowed" in reasons["uses os"] and reasons["uses os"].startswith("line ")
    assert "locate_box() is missing required argument 'cam'" in reasons["one argument short"]
    assert all(d["round"] == 1 for d in agent.dropped)
