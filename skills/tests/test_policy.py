"""The API-policy check of admission and the placeholder syntax of code sketches (no database)."""

import pytest

from skills.policy import check_program, check_sketch, check_skill_code, describe_issues
from worker.library.sketch import SketchError, fill_sketch, normalise_placeholders, placeholder_names, sketch_as_python

from .factories import STARTER


def codes(issues):
    return sorted({issue.code for issue in issues})


def test_it_passes_the_camera_only_reference_program():
    assert check_program(STARTER) == []


@pytest.mark.parametrize(
    "source, code, fragment",
    [
        (
            "obs = get_observation()\ncube = env.sim.data.body_xpos[3]",
            "SIMULATOR_STATE",
            "'env' refers to the simulator",
        ),
        ("def f(state):\n    return state.body_xpos", "SIMULATOR_STATE", "'.body_xpos' reads simulator state"),
        ("obs = get_observation()\np = obs['cube_pos']", "SIMULATOR_STATE", "observation key 'cube_pos'"),
        ("obs = get_observation()\np = obs['object-state']", "SIMULATOR_STATE", "'object-state'"),
        ("model = 'lift_arena.xml'", "ASSET_FILE", "simulator asset"),
        ("import os", "SANDBOX_POLICY", "import of os"),
        ("x = get_observation.__closure__", "SANDBOX_POLICY", "dunder"),
        ("p = grasp_pose_from_sim()", "UNKNOWN_NAME", "'grasp_pose_from_sim' is not a robot API function"),
    ],
)
def test_it_refuses_code_that_reaches_past_the_robot_api(source, code, fragment):
    issues = check_program(source)
    assert code in codes(issues), describe_issues(issues)
    assert fragment in describe_issues(issues)


@pytest.mark.parametrize(
    "source",
    [
        "move_to_pose([0.12, -0.05, 0.83], [0, 1, 0, 0])",
        "CUBE = np.array([0.12, -0.05, 0.83])\nmove_to_pose(CUBE + np.array([0.0, 0.0, 0.1]), [0, 1, 0, 0])",
        "j = solve_ik(position=(0.1, 0.2, 0.9), quaternion_wxyz=[0, 1, 0, 0])",
        "goal_pos = [0.1, 0.02, 0.8]",
        "move_to_pose([0.0, 0.0, 0.9], [0, 1, 0, 0])",
    ],
)
def test_it_refuses_absolute_coordinates_copied_from_one_scene(source):
    issues = check_program(source)
    assert codes(issues) == ["SCENE_CONSTANT"], describe_issues(issues)


def test_it_allows_offsets_relative_to_perceived_positions():
    source = (
        "obs = get_observation(['agentview'])\n"
        "cam = obs['agentview']\n"
        "det = segment_text_prompt(cam['images']['rgb'], 'cube')[0]\n"
        "pts = mask_to_world_points(det['mask'], cam['images']['depth'], cam['intrinsics'], cam['pose_mat'])\n"
        "APPROACH_OFFSET = [0.0, 0.02, 0.1]\n"
        "target = pts.mean(axis=0) + np.array(APPROACH_OFFSET)\n"
        "move_to_pose(target, [0, 1, 0, 0])\n"
        "move_to_pose(obs['robot0_cartesian_pos'][:3] + np.array([0.0, 0.0, 0.1]), [0, 1, 0, 0])\n"
    )
    assert check_program(source) == []


@pytest.mark.parametrize(
    "source", ["if seed == 3:\n    x = 1", "seed_id = 3\nprint(seed_id)", "def f(cfg):\n    return cfg.seed > 4"]
)
def test_it_refuses_seed_specific_branches(source):
    assert "SEED_BRANCH" in codes(check_program(source))


def test_it_reports_a_syntax_error_with_its_line_and_nothing_else():
    issues = check_program("x = 1\ny = (\n")
    assert len(issues) == 1 and issues[0].code == "SYNTAX" and issues[0].line == 2


def test_it_checks_sketch_placeholders_against_their_declarations():
    sketch = (
        "def approach(p, q):\n    return move_to_pose(p + np.array([0.0, 0.0, {{HEIGHT}}]), q)\n"
        "x = {{lower}} + {{MISSING}}"
    )
    issues = check_sketch(
        sketch,
        {
            "HEIGHT": {"default": 0.1, "doc": "m"},
            "UNUSED": {"default": 1, "doc": ""},
            "GOAL_POSITION": {"default": [0.5, 0.1, 0.9], "doc": ""},
        },
    )
    text = describe_issues(issues)
    assert "{{lower}} must be UPPER_CASE" in text
    assert "{{MISSING}} is used but not declared" in text
    assert "UNUSED is declared but the sketch never uses" in text
    assert "GOAL_POSITION defaults to absolute coordinates" in text
    assert "'HEIGHT'" not in text  # a declared placeholder is a known name


def test_it_checks_the_programs_a_skill_came_from_and_says_which():
    issues = check_skill_code("", {}, before_program=STARTER, after_program=STARTER + "\nprint(env)\n")
    assert [(i.where, i.code) for i in issues] == [("after program", "SIMULATOR_STATE")]


def test_placeholders_fill_with_defaults_or_chosen_values():
    sketch = "h = {{APPROACH_HEIGHT}}\nprompts = {{PROMPTS}}\nname = {{ OBJECT }}"
    declared = normalise_placeholders(
        {"APPROACH_HEIGHT": 0.1, "PROMPTS": {"default": ["cube", "block"]}, "OBJECT": "red cube"}
    )
    assert placeholder_names(sketch) == ["APPROACH_HEIGHT", "PROMPTS", "OBJECT"]
    assert fill_sketch(sketch, declared) == "h = 0.1\nprompts = ['cube', 'block']\nname = 'red cube'"
    assert fill_sketch(sketch, declared, {"APPROACH_HEIGHT": 0.2}).startswith("h = 0.2\n")
    assert sketch_as_python(sketch) == "h = APPROACH_HEIGHT\nprompts = PROMPTS\nname = OBJECT"
    with pytest.raises(SketchError, match="no placeholders named"):
        fill_sketch(sketch, declared, {"NOPE": 1})
    with pytest.raises(SketchError, match="short lists"):
        fill_sketch(sketch, declared, {"APPROACH_HEIGHT": {"a": 1}})


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"lower": 1}, "must be UPPER_CASE"),
        ({"X": {"doc": "no default"}}, "has no default"),
        ({"X": {"default": float("nan")}}, "finite"),
        ({"X": {"default": [1, "a"]}}, "at most 16 numbers, or strings"),
        ({"X": {"default": 1, "unit": "m"}}, "unknown keys"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_placeholder_declarations_are_refused_with_the_reason(raw, message):
    with pytest.raises(SketchError, match=message):
        normalise_placeholders(raw)


def test_code_in_the_published_reduced_api_style_passes_and_simulator_reads_still_fail():
    source = (
        "import numpy as np\n"
        "from scipy.spatial.transform import Rotation\n"
        "print(env.handle.task_language)\n"
        "cam = obs['agentview']\n"
        "q = Rotation.from_euler('z', 0.2).as_quat()\n"
        "pts = mask_to_world_points(m, cam['images']['depth'], cam['intrinsics'], cam['pose_mat'])\n"
        "goto_pose(pts.mean(axis=0), np.array([q[3], q[0], q[1], q[2]]), z_approach=0.1)\n"
        "best, score = select_top_down_grasp(g, s, cam['pose_mat'], vertical_threshold=0.9)\n"
        "width = obs['robot_cartesian_pos'][7] + obs['robot0_gripper_qpos'][0]\n"
    )
    codes = {(i.code, i.line) for i in check_program(source, extra_names=frozenset({"m", "g", "s"}))}
    assert codes == set(), codes
    leaked = check_program("print(env.handle.env.sim.data.qpos)\n")
    assert {i.code for i in leaked} == {"SIMULATOR_STATE"}
