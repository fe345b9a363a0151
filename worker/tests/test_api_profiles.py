"""API profiles: the "auto" rule, and which functions and signatures each profile offers (no simulator)."""

import inspect
from pathlib import Path

import pytest

from worker.engine import EngineSettings
from worker.robot.api import RobotAPI, api_reference_markdown
from worker.robot.profiles import (
    PUBLISHED_ONLY_FUNCTIONS,
    detect_profile,
    needs_initial_observation,
    resolve_profile,
    unbound_globals,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("goto_pose([0.5, 0, 0.2], [0, 1, 0, 0], z_approach=0.1)", "published"),
        ("best, score = select_top_down_grasp(g, s, E)", "published"),
        ("best = select_top_down_grasp(g, s, E)\nif best[0] is None:\n    pass", "published"),
        ("p = pixel_to_world_point(10, 20, 0.8, K, E)", "published"),
        ("w = interpolate_segment(a, b, step=0.05)", "published"),
        ("x = obs['robot_cartesian_pos'][2]", "published"),
        ("from scipy.spatial.transform import Rotation", "published"),
        ("cam = obs['agentview']", "published"),  # the runner's global obs, never assigned
        ("print(env.handle.task_language)", "published"),
        # only names both APIs share: how published programs are written
        ("obs = get_observation()\nmove_to_joints(solve_ik([0.5, 0, 0.2], [0, 1, 0, 0]))", "published"),
        ("move_to_pose([0.5, 0, 0.2], [0, 1, 0, 0])", "native"),
        ("g = select_top_down_grasp(p, s, T)\nmove_to_pose(g['position'], g['quaternion_wxyz'])", "native"),
        (
            "obs = get_observation(['agentview'])\nd = segment_text_prompt(obs['agentview']['images']['rgb'], 'cube')",
            "native",
        ),
        ("def f(obs):\n    return obs['agentview']\nobs = get_observation(['agentview'])", "native"),
        ("move_to_joints(q, collision_check=False)", "native"),
    ],
)
def test_auto_picks_the_profile_from_what_the_program_uses(source, expected):
    profile, reasons = detect_profile(source)
    assert profile == expected, reasons
    assert reasons and all(isinstance(r, str) and r for r in reasons)


def test_published_usage_outweighs_native_usage_and_the_reason_names_the_line():
    source = "move_to_pose([0.5, 0, 0.2], [0, 1, 0, 0])\n\ngoto_home_joint_position()\n"
    profile, why = resolve_profile("auto", source)
    assert profile == "published" and "goto_home_joint_position (line 3)" in why


def test_a_run_can_fix_the_profile_and_a_bad_choice_is_refused():
    assert resolve_profile("native", "goto_pose(p, q)") == ("native", "native (set for the run)")
    assert resolve_profile("published", "move_to_pose(p, q)")[0] == "published"
    with pytest.raises(ValueError, match="auto, native, published"):
        resolve_profile("capx", "")
    with pytest.raises(ValueError, match="api_profile"):
        EngineSettings(api_profile="nope")


def test_unparsable_programs_are_left_to_the_sandbox_to_report():
    assert detect_profile("def (:")[0] in ("native", "published")
    assert unbound_globals("def (:") == frozenset()


def test_globals_the_runner_must_provide_follow_python_scoping():
    assert needs_initial_observation("def look():\n    return obs['agentview']\nprint(look())")
    assert needs_initial_observation("x = INPUTS['robot_joint_pos']")
    assert not needs_initial_observation("obs = get_observation()\nprint(obs['agentview'])")
    assert not needs_initial_observation("def f(obs):\n    return obs\n")
    assert not needs_initial_observation("def f():\n    obs = get_observation()\n    return obs\n")
    assert not needs_initial_observation("for obs in []:\n    pass\nprint(obs)")


def test_the_published_profile_offers_the_published_functions_and_forms():
    native = {r["name"]: r for r in RobotAPI.reference(2, "native")}
    published = {r["name"]: r for r in RobotAPI.reference(2, "published")}
    # What auto detects as published-only is exactly what only the published profile offers.
    assert set(published) - set(native) == PUBLISHED_ONLY_FUNCTIONS and not set(native) - set(published)
    expected = {
        "goto_pose": "goto_pose(position, quaternion_wxyz, z_approach: float = 0.0)",
        "select_top_down_grasp": "select_top_down_grasp(grasps, scores, cam_to_world, vertical_threshold=0.8)",
        "pixel_to_world_point": "pixel_to_world_point(u, v, z, intrinsics, extrinsics)",
        "interpolate_segment": "interpolate_segment(p1, p2, step: float = 0.03)",
        "depth_to_point_cloud": "depth_to_point_cloud(depth_img, intrinsics)",
        "plan_grasp": "plan_grasp(depth, intrinsics, segmentation)",
        "subsample_point_cloud": "subsample_point_cloud(pc, max_points: int = 10000)",
        "filter_noise": "filter_noise(points, colors=None)",
        "point_prompt_molmo": "point_prompt_molmo(image, text_prompt: str)",
        "plan_grasp_from_point_clouds": "plan_grasp_from_point_clouds(pc_full, pc_segment)",
        "mask_to_world_points": "mask_to_world_points(mask, depth, intrinsics, extrinsics)",
        "transform_points": "transform_points(points, transform_matrix)",
        "solve_ik_arm1": "solve_ik_arm1(position, quaternion_wxyz)",
    }
    for name, signature in expected.items():
        assert published[name]["signature"] == signature
    assert native["select_top_down_grasp"]["signature"].startswith("select_top_down_grasp(grasp_poses")
    # Native programs and agents see the native reference; the published one explains the profiles.
    assert "goto_pose" not in api_reference_markdown(1)
    text = api_reference_markdown(1, profile="published")
    assert "### goto_pose(" in text and "## API profiles" in text


def test_every_primitive_documents_itself_in_both_profiles():
    for profile in ("native", "published"):
        for entry in RobotAPI.reference(2, profile):
            assert entry["doc"].strip(), (profile, entry["name"])
    for name in ("solve_ik_published", "goto_pose", "select_top_down_grasp_published", "point_prompt_molmo"):
        assert "Returns:" in inspect.getdoc(getattr(RobotAPI, name)), name


def test_the_compatibility_corpus_runs_under_the_published_profile_and_our_programs_under_native():
    for path in sorted((ROOT / "compat" / "programs").glob("*.py")):
        assert detect_profile(path.read_text())[0] == "published", path.name
    for path in sorted((ROOT / "worker" / "programs").glob("*.py")):
        assert detect_profile(path.read_text())[0] == "native", path.name
