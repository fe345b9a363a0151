"""The episode's 3D view (worker.robot.scene3d): a real Lift episode keeps its cameras' clouds, the masks'
points, grasp candidates, motion targets and planned paths, and the robot's path and joints over time,
all in the world frame and tagged with the calls they came from; untraced episodes keep none."""

import numpy as np

from worker.engine import EngineSettings, run_episode
from worker.events import MemorySink
from worker.robot import scene3d as s3
from worker.robot import status as st


def with_grasp_plan(program: str) -> str:
    """The Lift program planning grasps on the cube's mask before it locates the cube itself."""
    return program.replace(
        "cube_points = mask_to_world_points(",
        'candidates, grasp_scores = plan_grasp(depth, K, cubes[0]["mask"])\n'
        "top_grasp = select_top_down_grasp(candidates, grasp_scores, cam_pose)\n"
        "cube_points = mask_to_world_points(",
        1,
    )


def test_a_traced_lift_episode_keeps_its_3d_view(lift_spec, starter_program, tmp_path):
    sink = MemorySink()
    program = with_grasp_plan(starter_program)
    result = run_episode(lift_spec, program, 101, sink, EngineSettings(), str(tmp_path))
    assert result.success and result.status == st.OK, result.error
    assert result.scene3d.endswith("/scene3d.json.gz")
    raw = (tmp_path / result.scene3d).read_bytes()
    assert raw[:2] == b"\x1f\x8b" and len(raw) < 1_500_000
    doc = s3.load(raw)
    assert doc["schema"] == s3.SCHEMA and doc["arms"] == 1 and not doc["error"]
    calls = {c.seq: c.primitive for c in sink.episodes[0]["calls"]}

    scene = [c for c in doc["clouds"] if c["kind"] == "scene"]
    assert scene and all(calls[c["seq"]] == "get_observation" for c in scene)
    per_call: dict[int, int] = {}
    for c in scene:
        xyz, rgb = s3.decode_points(c)
        assert xyz.shape == (c["n"], 3) and rgb.shape == (c["n"], 3) and np.isfinite(xyz).all()
        per_call[c["seq"]] = per_call.get(c["seq"], 0) + c["n"]
    assert 0 < max(per_call.values()) <= s3.MAX_POINTS

    masks = [c for c in doc["clouds"] if c["kind"] == "mask"]
    assert masks, "the program segments the cube: its mask's points are kept"
    cube, _ = s3.decode_points(masks[0])
    # The cube sits on the table in front of the robot (world = robot base frame).
    assert 0.2 < np.median(cube[:, 0]) < 1.0 and abs(np.median(cube[:, 1])) < 0.4

    # Motions: a target pose per move, a planned path starting where the gripper was.
    moves = [s for s, p in calls.items() if p == "move_to_pose"]
    assert sorted({t["seq"] for t in doc["targets"]}) == moves
    assert {p["seq"] for p in doc["plans"]} == set(moves)
    for p in doc["plans"]:
        assert len(p["path"]) >= 2
    lift_target = np.array(doc["targets"][-1]["pose"]).reshape(3, 4)
    np.testing.assert_allclose(np.linalg.det(lift_target[:, :3]), 1.0, atol=1e-3)

    # The executed path: samples over the whole episode, in time order, of the grasp point and 7 joints;
    # each motion's planned path ends near where the executed path of that call ended.
    samples = doc["samples"]
    t = samples["t"]
    assert len(t) > 20 and t == sorted(t) and t[-1] >= result.sim_time - 0.01
    pose, joints = np.array(samples["pose"][0]), np.array(samples["joints"][0])
    assert pose.shape == (len(t), 7) and joints.shape == (len(t), 7)
    seqs = np.array(samples["seq"])
    for p in doc["plans"]:
        during = np.nonzero(seqs == p["seq"])[0]
        if p["ok"] and len(during):
            assert np.linalg.norm(pose[during[-1], :3] - p["path"][-1]) < 0.03, p["seq"]

    # Grasp candidates (world frame) of plan_grasp, best first, then select_top_down_grasp's pick among them:
    # near the cube, approaching from above.
    planned, picked = doc["grasps"]
    assert calls[planned["seq"]] == "plan_grasp" and calls[picked["seq"]] == "select_top_down_grasp"
    assert planned["best"] == 0 and not planned["selected"] and picked["selected"]
    assert len(planned["scores"]) == len(planned["poses"]) >= 2 and planned["scores"] == sorted(planned["scores"])[::-1]
    best = np.array(picked["poses"][picked["best"]]).reshape(3, 4)
    assert np.linalg.norm(best[:, 3] - np.median(cube, axis=0)) < 0.06
    assert best[2, 2] < -0.8  # the approach axis points down


def test_untraced_or_storage_less_episodes_keep_no_3d_view(lift_spec, starter_program, tmp_path):
    assert run_episode(lift_spec, starter_program, 102, MemorySink(), EngineSettings(), None).scene3d == ""
    off = EngineSettings(trace=False)
    assert run_episode(lift_spec, starter_program, 102, MemorySink(), off, str(tmp_path)).scene3d == ""


def test_the_collector_caps_its_samples_and_never_raises():
    state = lambda arm: (np.zeros(7), np.zeros(7), 0.04)  # noqa: E731
    scene = s3.Scene3D(lambda: 3, lambda: 0.0, state, 1, every_steps=1, max_samples=10)
    for step in range(1, 40):
        scene.on_step(step)
    assert len(scene.samples) < 10 and scene.every_steps > 1 and scene.truncated
    cloud = np.random.default_rng(0).uniform(-1, 1, (s3.MAX_MASK_POINTS, 3))
    for _ in range(s3.MAX_CLOUDS + 5):
        scene.points("many", cloud)
    assert len(scene.clouds) == min(s3.MAX_CLOUDS, -(-s3.MAX_TOTAL_POINTS // s3.MAX_MASK_POINTS))
    assert scene.clouds[0]["n"] == s3.MAX_MASK_POINTS
    scene.points("bad", "not points")  # a failure stops the collection, not the episode
    assert scene.error.startswith("points")
    assert s3.load(scene.finish())["error"] == scene.error
