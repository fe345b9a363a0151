"""Round-0 programs for multi-step instructions (worker.agents.programs.parse_steps / compose /
zero_shot_program): the LIBERO-10 (LIBERO-Long) instructions cut into steps the templates cover, one
program composed from the steps' templates that passes the pre-run checks, and library skills changing
the zero-shot program."""

import ast

import pytest

from worker.agents import programs as prog
from worker.agents.offline import OfflineSearchAgent, candidate_problems
from worker.search.core import Brief
from worker.sim import catalog


def steps(text):
    return [(s.kind, s.phrases) for s in prog.parse_steps(text)]


@pytest.mark.parametrize(
    "instruction, expected",
    [
        (
            "put both the alphabet soup and the tomato sauce in the basket",
            [("put_in", ("alphabet soup", "basket")), ("put_in", ("tomato sauce", "basket"))],
        ),
        (
            "put both the cream cheese box and the butter in the basket",
            [("put_in", ("cream cheese box", "basket")), ("put_in", ("butter", "basket"))],
        ),
        (
            "put the black bowl in the bottom drawer of the cabinet and close it",
            [("put_in", ("black bowl", "bottom drawer of the cabinet")), ("close_drawer", ("bottom drawer",))],
        ),
        (
            "turn on the stove and put the moka pot on it",
            [("turn_on_stove", ("stove",)), ("place_on", ("moka pot", "stove"))],
        ),
        (
            "put the white mug on the left plate and put the yellow and white mug on the right plate",
            [("place_on", ("white mug", "left plate")), ("place_on", ("yellow and white mug", "right plate"))],
        ),
        (
            "pick up the book and place it in the back compartment of the caddy",
            [("put_in", ("book", "back compartment of the caddy"))],
        ),
        ("put both moka pots on the stove", [("place_on", ("moka pot", "stove"))] * 2),
        (
            "put the yellow and white mug in the microwave and close it",
            [("put_in", ("yellow and white mug", "microwave")), (None, ())],
        ),
        (
            "open the top drawer of the cabinet and put the bowl in it",
            [("open_drawer", ("top drawer",)), ("put_in", ("bowl", "top drawer of the cabinet"))],
        ),
    ],
)
def test_libero_long_instructions_are_cut_into_template_steps(instruction, expected):
    assert steps(instruction) == expected


def test_a_pronoun_names_the_previous_steps_target_else_its_object():
    drawer = prog.parse_steps("put the black bowl in the bottom drawer of the cabinet and close it")
    assert drawer[1].text == "close the bottom drawer of the cabinet"
    stove = prog.parse_steps("turn on the stove and put the moka pot on it")
    assert stove[0].object == "stove" and stove[1].text == "put the moka pot on the stove"


def test_a_single_step_instruction_is_parse_instruction():
    text = "pick up the alphabet soup and place it in the basket"
    assert steps(text) == [(k, tuple(p)) for k, p in [prog.parse_instruction(text)]]


def test_both_objects_share_the_functions_and_get_their_own_prompts():
    code, origin, report = prog.zero_shot_program("put both the alphabet soup and the tomato sauce in the basket")
    assert candidate_problems(code) == []
    consts = prog.constants(code)
    assert consts["OBJECT_PROMPT"] == "alphabet soup" and consts["STEP2_OBJECT_PROMPT"] == "tomato sauce"
    assert consts["CONTAINER_PROMPT"] == "basket" and "STEP2_CONTAINER_PROMPT" not in consts
    names = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    assert len(names) == len(set(names)) and "look" in names and "step2_look" not in names
    # step 2's body looks for its own object
    step2 = code.split("# -- step 2:")[1]
    assert "look([STEP2_OBJECT_PROMPT, CONTAINER_PROMPT])" in step2
    assert origin.startswith("2 of 2 steps composed")
    assert [s["kind"] for s in report["steps"]] == ["put_in", "put_in"]


def test_steps_of_different_templates_compose_into_one_checked_program():
    code, origin, _ = prog.zero_shot_program("put the black bowl in the bottom drawer of the cabinet and close it")
    assert candidate_problems(code) == []
    consts = prog.constants(code)
    assert consts["DRAWER_PROMPT"] == "bottom drawer" and consts["OBJECT_PROMPT"] == "black bowl"
    assert code.index("# -- step 1:") < code.index("# -- step 2:")
    assert "close_drawer template" in origin


def test_a_function_that_differs_between_steps_is_renamed_for_the_later_step():
    one = "A = 1\n\n\ndef f(x):\n    return x + A\n\n\nprint(f(1))\n"
    two = "A = 2  # two\n\n\ndef f(x):\n    return x + A\n\n\nprint(f(2))\n"
    code = prog.compose([("one", one), ("two", two)])
    assert "STEP2_A = 2  # two" in code and "def step2_f(x):\n    return x + STEP2_A" in code
    assert "print(step2_f(2))" in code and "print(f(1))" in code
    namespace = {"print": lambda *a: out.append(a)}
    out = []
    exec(compile(code, "composed", "exec"), namespace)
    assert out == [(2,), (4,)]


def test_steps_no_template_covers_are_named_and_the_rest_is_done():
    code, origin, report = prog.zero_shot_program("put the yellow and white mug in the microwave and close it")
    assert report["not_covered"] == ["close the microwave"]
    assert "not done, no template covers: close the microwave" in origin
    assert "not done (no template covers it): close the microwave" in code
    assert prog.constants(code)["OBJECT_PROMPT"] == "yellow and white mug" and candidate_problems(code) == []


def test_every_libero_10_instruction_gives_a_checked_program():
    libero = [t for t in catalog.all_tasks() if t.suite == "libero_10"]
    if not libero:
        pytest.skip("the LIBERO benchmark package is not installed")
    for task in libero:
        code, origin, _ = prog.zero_shot_program(task.instruction)
        assert candidate_problems(code) == [], task.instruction
        assert "lift template" not in origin, task.instruction


# -- skills at round 0 --------------------------------------------------------------------------------------
KNOB_SKILL = {
    "name": "Give blocked moves more room",
    "code_sketch": "RIM_CLEARANCE = {{RIM_CLEARANCE}}",
    "placeholders": {"RIM_CLEARANCE": {"default": 0.042, "doc": "was 0.03 when the seeds failed"}},
}
PROMPT_SKILL = {
    "name": "Re-phrase a prompt that finds nothing",
    "code_sketch": "OBJECT_PROMPT = {{OBJECT_PROMPT}}",
    "placeholders": {"OBJECT_PROMPT": {"default": "soup", "doc": ""}},
}
CHOOSE_SKILL = {
    "name": "Take the largest match",
    "code_sketch": "def choose(prompt, candidates):\n    return max(candidates, key=len) if candidates else None\n",
    "placeholders": {},
}
BAD_ARITY_SKILL = {
    "name": "A choose with other parameters",
    "code_sketch": "def choose(candidates):\n    return candidates[0] if candidates else None\n",
    "placeholders": {},
}


def test_a_library_skill_changes_the_zero_shot_program():
    bare, _, _ = prog.zero_shot_program("put both the alphabet soup and the tomato sauce in the basket")
    code, origin, report = prog.zero_shot_program(
        "put both the alphabet soup and the tomato sauce in the basket", [KNOB_SKILL, PROMPT_SKILL, CHOOSE_SKILL]
    )
    assert code != bare and candidate_problems(code) == []
    consts = prog.constants(code)
    assert consts["RIM_CLEARANCE"] == 0.042
    assert consts["OBJECT_PROMPT"] == "alphabet soup"  # prompts come from the instruction, not a skill
    assert "max(candidates, key=len)" in prog.function_source(code, "choose")
    assert "skill 'Give blocked moves more room': RIM_CLEARANCE 0.03 -> 0.042" in origin
    assert report["steps"][0]["skills_applied"] == report["steps"][1]["skills_applied"]


def test_a_skill_whose_function_no_longer_fits_the_calls_is_not_applied():
    code, _ = prog.template_for("put_in", ["alphabet soup", "basket"])
    new, applied = prog.apply_skills(code, [BAD_ARITY_SKILL], ("OBJECT_PROMPT", "CONTAINER_PROMPT"))
    assert new == code and applied == []


def test_skills_are_retrieved_per_step_when_a_retriever_is_given():
    asked = []

    def retrieve(text):
        asked.append(text)
        return [KNOB_SKILL] if "drawer" in text and "close" not in text else []

    code, _, report = prog.zero_shot_program(
        "put the black bowl in the bottom drawer of the cabinet and close it", retrieve=retrieve
    )
    assert asked == ["put the black bowl in the bottom drawer of the cabinet", "close the bottom drawer of the cabinet"]
    assert report["steps"][0]["skills_applied"] and not report["steps"][1]["skills_applied"]
    assert prog.constants(code)["RIM_CLEARANCE"] == 0.042


def test_the_offline_agent_starts_from_the_composed_program():
    brief = Brief(
        task_key="t",
        instruction="put both the alphabet soup and the tomato sauce in the basket",
        arms=1,
        cameras=["agentview"],
        round=0,
        k=3,
        debug_seeds=(1,),
        survivors=[],
        eliminated=[],
        skills=[KNOB_SKILL],
        starter="",
    )
    proposals = OfflineSearchAgent().propose(brief)
    assert proposals[0].hypothesis.startswith("start from 2 of 2 steps composed")
    assert prog.constants(proposals[0].code)["STEP2_OBJECT_PROMPT"] == "tomato sauce"
    assert prog.constants(proposals[0].code)["RIM_CLEARANCE"] == 0.042


def test_a_prelude_skill_goes_before_the_zero_shot_program_once():
    """A library skill whose sketch is the finger-line prelude (the offline agent's generic repair) is put
    before a composed program that calls move_to_pose, once, and the result still passes the policy."""
    from worker.agents.offline import candidate_problems, finger_line_prelude

    skill = {
        "name": "Turn the finger line when a pose move is refused",
        "code_sketch": finger_line_prelude(["move_to_pose"]),
        "placeholders": {},
    }
    code, applied = prog.apply_skills(prog.template_for("put_in", ["alphabet soup", "basket"])[0], [skill, skill])
    assert code.count("move_to_pose = finger_line_retry(move_to_pose") == 1
    assert applied == [
        "skill 'Turn the finger line when a pose move is refused': before the program, wrapping move_to_pose"
    ]
    assert candidate_problems(code) == []
