"""The open-drawer and turn-on-stove templates (worker/programs/libero_open_drawer.py,
libero_turn_on_stove.py): the instructions they cover are parsed to them, their prompts are filled from the
instruction, and the filled and composed programs pass the offline agent's pre-run checks."""

import pytest

from worker.agents import programs as prog
from worker.agents.offline import candidate_problems
from worker.sim import catalog


@pytest.mark.parametrize(
    "instruction, expected",
    [
        ("open the top drawer of the cabinet", ("open_drawer", ["top drawer"])),
        ("open the bottom drawer of the cabinet", ("open_drawer", ["bottom drawer"])),
        ("Open the middle layer of the drawer", ("open_drawer", ["middle drawer"])),
        ("open the cabinet’s middle drawer", ("open_drawer", ["middle drawer"])),
        ("open the upper drawer", ("open_drawer", ["top drawer"])),
        ("turn on the stove", ("turn_on_stove", ["stove"])),
        ("Turn on the stove.", ("turn_on_stove", ["stove"])),
        ("switch on the stove", ("turn_on_stove", ["stove"])),
        ("switch stove on", ("turn_on_stove", ["stove"])),
    ],
)
def test_open_and_turn_on_instructions_parse_to_their_templates(instruction, expected):
    assert prog.parse_instruction(instruction) == expected


@pytest.mark.parametrize(
    "instruction", ["turn off the stove", "close the top drawer of the cabinet", "open the microwave"]
)
def test_other_instructions_do_not_take_the_new_templates(instruction):
    parsed = prog.parse_instruction(instruction)
    assert parsed is None or parsed[0] not in ("open_drawer", "turn_on_stove")


@pytest.mark.parametrize(
    "instruction, slot, value",
    [
        ("Open the middle layer of the drawer", "DRAWER_PROMPT", "middle drawer"),
        ("open the bottom drawer of the cabinet", "DRAWER_PROMPT", "bottom drawer"),
        ("turn on the stove", "STOVE_PROMPT", "stove"),
    ],
)
def test_a_filled_template_passes_the_pre_run_checks(instruction, slot, value):
    code, origin, report = prog.zero_shot_program(instruction)
    assert prog.constants(code)[slot] == value
    assert candidate_problems(code) == []
    assert "lift template" not in origin and report["not_covered"] == []


def test_the_templates_prompt_slots_are_constants_of_their_programs():
    for kind in ("open_drawer", "turn_on_stove"):
        template = prog.TEMPLATES[kind]
        assert set(template.prompt_slots) <= set(prog.constants(template.code())), kind


@pytest.mark.parametrize(
    "instruction, expected",
    [
        (
            "turn on the stove and put the moka pot on it",
            [("turn_on_stove", ("stove",)), ("place_on", ("moka pot", "stove"))],
        ),
        (
            "switch stove on and put moka pot on it",
            [("turn_on_stove", ("stove",)), ("place_on", ("moka pot", "stove"))],
        ),
        (
            "Open the top layer of the drawer and put the bowl inside",
            [("open_drawer", ("top drawer",)), ("put_in", ("bowl", "top drawer"))],
        ),
        (
            "close the bottom drawer of the cabinet and open the top drawer",
            [("close_drawer", ("bottom drawer",)), ("open_drawer", ("top drawer",))],
        ),
    ],
)
def test_multi_step_instructions_get_the_new_steps(instruction, expected):
    assert [(s.kind, s.phrases) for s in prog.parse_steps(instruction)] == expected


def test_stove_and_moka_pot_compose_into_one_checked_program():
    code, origin, report = prog.zero_shot_program("turn on the stove and put the moka pot on it")
    assert report["not_covered"] == []
    assert [s["kind"] for s in report["steps"]] == ["turn_on_stove", "place_on"]
    consts = prog.constants(code)
    assert consts["STOVE_PROMPT"] == "stove" and consts["PICK_PROMPT"] == "moka pot"
    assert code.index("# -- step 1:") < code.index("# -- step 2:")
    assert candidate_problems(code) == []


def test_open_drawer_and_put_the_bowl_inside_compose_into_one_checked_program():
    code, _, report = prog.zero_shot_program("Open the top layer of the drawer and put the bowl inside")
    assert [s["kind"] for s in report["steps"]] == ["open_drawer", "put_in"]
    consts = prog.constants(code)
    assert consts["DRAWER_PROMPT"] == "top drawer" and consts["OBJECT_PROMPT"] == "bowl"
    assert candidate_problems(code) == []


def test_catalog_stove_and_drawer_tasks_get_their_templates():
    tasks = {t.key: t for t in catalog.all_tasks()}
    keys = {
        "libero:libero_90/KITCHEN_SCENE1_open_the_top_drawer_of_the_cabinet": "open_drawer",
        "libero:libero_goal/open_the_middle_drawer_of_the_cabinet": "open_drawer",
        "libero:libero_90/KITCHEN_SCENE3_turn_on_the_stove": "turn_on_stove",
        "libero:libero_goal/turn_on_the_stove": "turn_on_stove",
    }
    if not all(k in tasks for k in keys):
        pytest.skip("the LIBERO benchmark package is not installed")
    for key, kind in keys.items():
        steps = prog.parse_steps(tasks[key].instruction)
        assert [s.kind for s in steps] == [kind], key
