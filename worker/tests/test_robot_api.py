"""The robot API on real MuJoCo: grasp planning, collision-checked motion, carried objects, statuses."""

import json
import re
from pathlib import Path

import numpy as np

from worker.engine import EngineSettings, run_episode, simulators
from worker.events import MemorySink
from worker.robot import status as st
from worker.robot.api import RobotAPI
from worker.sim.catalog import get_task

# Perception is realistic (a model can miss the object in one image): look again, up to three times.
PICK = """
for attempt in range(3):
    obs = get_observation(["agentview"])
    cam = obs["agentview"]
    dets = segment_text_prompt(cam["images"]["rgb"], "{prompt}")
    if dets:
        break
det = dets[0]
poses, scores = plan_grasp(cam["images"]["depth"], cam["intrinsics"], det["mask"])
g = select_top_down_grasp(poses, scores, cam["pose_mat"])
print("grasp", *g["position"], len(poses))
open_gripper()
move_to_pose(g["position"] + np.array([0, 0, 0.1]), g["quaternion_wxyz"])
move_to_pose(g["position"], g["quaternion_wxyz"])
print("width", close_gripper())
print("lift", move_to_pose(g["position"] + np.array([0, 0, 0.15]), g["quaternion_wxyz"]))
"""


def episode(task, program, seed, tmp_path=None):
    sink = MemorySink()
    result = run_episode(get_task(task), program, seed, sink, EngineSettings(), str(tmp_path) if tmp_path else None)
    return result, sink.episodes[0]["calls"]


def body_position(task, body):
    adapter, *_ = simulators().get(get_task(task))
    sim = adapter.sim
    return np.array(sim.data.body_xpos[sim.model.body_name2id(body)]) - adapter.base_pose()[:3, 3]


def test_the_api_offered_depends_on_the_number_of_arms():
    one = {r["name"] for r in RobotAPI.reference(1)}
    two = {r["name"] for r in RobotAPI.reference(2)}
    assert {"solve_ik", "move_to_pose", "plan_grasp", "select_top_down_grasp", "segment_sam3_text_prompt"} <= one
    assert (
        "move_to_pose_arm1" not in one
        and {"move_to_pose_arm1", "move_to_joints_both", "move_to_pose_both", "close_gripper_arm1"} <= two
    )
    result, _ = episode("robosuite:Lift", "move_to_pose_arm1([0.5, 0, 0.2], [0, 1, 0, 0])", 1)
    assert result.status == st.EXCEPTION and "NameError" in result.error


def test_planned_top_down_grasps_pick_the_cube(tmp_path):
    result, calls = episode("robosuite:Lift", PICK.format(prompt="red cube"), 21, tmp_path)
    assert result.status == st.OK and result.success, result.error
    x, y, z, n = map(float, result.stdout.split("\n")[0].split()[1:])
    truth = body_position("robosuite:Lift", "cube_main")
    assert n >= 5
    # The grasp goes where the cube was (it has been lifted since): within 1.5 cm in x and y.
    assert abs(x - truth[0]) < 0.015 and abs(y - truth[1]) < 0.015
    grasp_call = next(c for c in calls if c.primitive == "plan_grasp")
    assert grasp_call.keyframes and grasp_call.keyframes[0].label == "grasps"
    assert len(grasp_call.artifacts["grasps"]) >= 5


def test_a_target_inside_the_table_is_refused_and_the_arm_stays_put():
    # The planner knows the table only from the cameras: the program observes first.
    program = (
        "before = get_observation()['robot0_joint_pos']\n"
        "print(move_to_pose([0.5, 0.0, -0.16], [0, 1, 0, 0]))\n"
        "print(np.abs(get_observation([])['robot0_joint_pos'] - before).max() < 0.01)"
    )
    result, calls = episode("robosuite:Lift", program, 2)
    assert result.stdout.split() == ["PLANNING_ERROR", "True"]
    move = calls[1]
    assert move.status == st.PLANNING_ERROR and "target configuration is in occupied space" in move.message
    # The point it meets is at or below the table top (about 11 cm under the robot's base), seen by a camera.
    point = json.loads(re.search(r"at (\[[^\]]+\]) m, seen by camera \w+", move.message).group(1))
    assert point[2] < -0.09, move.message


def test_a_carried_object_is_checked_against_the_scene():
    # After the pick, lowering the held cube into the table is refused naming what arm0 holds, while lifting
    # it (fingers on the cube, cube on the table at the start) is not mistaken for a collision.
    program = PICK.format(prompt="cube") + (
        "print('into table', move_to_pose(g['position'] + np.array([0.05, 0, -0.03]), g['quaternion_wxyz']))\n"
    )
    result, calls = episode("robosuite:Lift", program, 4)
    assert "lift REACHED" in result.stdout, result.stdout
    assert "into table PLANNING_ERROR" in result.stdout
    # Named in the robot's terms: what arm0 holds meets occupied space (the perceived table top).
    assert "the object held by arm0 would meet occupied space" in calls[-1].message, calls[-1].message


def test_a_blocked_straight_path_is_planned_around(tmp_path):
    # Sweep the open hand low across the green cube: the straight line hits it, RRTConnect goes around.
    program = """
obs = get_observation(["agentview"])
cam = obs["agentview"]
det = segment_text_prompt(cam["images"]["rgb"], "green cube")[0]
pts = mask_to_world_points(det["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])
c = np.median(pts, axis=0)
q = np.array([0.0, 0.0, 1.0, 0.0])
print(move_to_pose([c[0], c[1] - 0.15, c[2]], q))
print(move_to_pose([c[0], c[1] + 0.15, c[2]], q))
"""
    result, calls = episode("robosuite:Stack", program, 3, tmp_path)
    moves = [c for c in calls if c.primitive == "move_to_pose"]
    assert result.stdout.split() == ["REACHED", "REACHED"], (result.stdout, [m.message for m in moves])
    assert moves[1].artifacts["plan"]["method"] == "rrt_connect"
    # What blocked the straight path: a perceived point on the green cube (5 cm across), with its camera.
    blocked = moves[1].artifacts["plan"]["blocked_by"]
    point = np.array(
        json.loads(
            re.search(r"at (\[[^\]]+\]) m, seen by camera \w+, -?[0-9.]+ m above the support surface$", blocked).group(
                1
            )
        )
    )
    assert np.linalg.norm(point - body_position("robosuite:Stack", "cubeB_main")) < 0.05, blocked
    assert moves[1].keyframes and moves[1].keyframes[0].label == "path"


def test_deliberate_contact_skips_the_check():
    program = """
get_observation()
q = np.array([0.0, 0.0, 1.0, 0.0])
print(move_to_pose([0.5, 0.0, -0.125], q))
print(move_to_pose([0.5, 0.0, -0.125], q, collision_check=False))
"""
    result, calls = episode("robosuite:Lift", program, 5)
    first, second = result.stdout.split()
    assert first == "PLANNING_ERROR" and second in ("REACHED", "COLLISION", "NOT_REACHED")
    assert calls[2].artifacts["plan"]["method"] == "straight_unchecked"


def test_geometry_helpers():
    program = """
T = np.eye(4); T[:3, 3] = [0.1, 0.2, 0.3]
T[:3, :3] = np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]])
p, q = decompose_transform(T)
print(np.round(p, 3).tolist(), np.round(np.abs(q), 3).tolist())
seg = interpolate_segment([0, 0, 0], [0.1, 0, 0], max_step=0.03)
print(seg.shape, np.round(seg[1, 0], 3))
poses = interpolate_segment([0, 0, 0, 1, 0, 0, 0], [0, 0, 0.1, 0, 0, 0, 1], max_step=0.05)
print(poses.shape, np.round(np.linalg.norm(poses[:, 3:], axis=1), 6).tolist())
try:
    decompose_transform(np.ones((4, 4)))
except ValueError as e:
    print("refused")
"""
    result, _ = episode("robosuite:Lift", program, 1)
    lines = result.stdout.strip().split("\n")
    assert lines[0] == "[0.1, 0.2, 0.3] [0.0, 1.0, 0.0, 0.0]"
    assert lines[1] == "(5, 3) 0.025"
    assert lines[2] == "(3, 7) [1.0, 1.0, 1.0]"
    assert lines[3] == "refused"


def test_a_gripper_without_fingers_says_so():
    result, calls = episode("robosuite:Wipe", "close_gripper()", 1)
    assert result.status == st.EXCEPTION and "has no fingers" in result.error
    assert calls[0].status == st.BAD_ARGUMENT


def test_two_arm_tasks_drive_each_arm_in_the_world_frame_of_robot0():
    program = """
obs = get_observation([])
p0, p1 = obs["robot0_cartesian_pos"], obs["robot1_cartesian_pos"]
print(round(p1[0] - p0[0], 1))
q1 = solve_ik_arm1(p1[:3] + np.array([-0.05, 0.0, 0.05]), p1[3:7])
print(move_to_joints_arm1(q1))
after = get_observation([])["robot1_cartesian_pos"]
print(np.round(after[:3] - p1[:3], 2).tolist())
print(np.allclose(get_observation([])["robot0_cartesian_pos"][:3], p0[:3], atol=0.005))
"""
    result, _ = episode("robosuite:TwoArmHandover", program, 1)
    lines = result.stdout.strip().split("\n")
    assert result.status == st.OK, result.error
    assert lines[0] == "0.7"  # the arms face each other along robot0's x axis
    assert lines[1] == "REACHED" and lines[2] == "[-0.05, 0.0, 0.05]" and lines[3] == "True"


def test_both_arms_move_to_poses_together_or_not_at_all():
    program = """
obs = get_observation([])
p0, p1 = obs["robot0_cartesian_pos"], obs["robot1_cartesian_pos"]
up = np.array([0.0, 0.0, 0.06])
print(move_to_pose_both(p0[:3] + up, p0[3:7], p1[:3] + up, p1[3:7]))
now = get_observation([])
print((np.round(now["robot0_cartesian_pos"][:3] - p0[:3], 2) + 0.0).tolist(),
      (np.round(now["robot1_cartesian_pos"][:3] - p1[:3], 2) + 0.0).tolist())
print(move_to_pose_both(p0[:3], p0[3:7], p1[:3] + np.array([0.0, 0.0, 3.0]), p1[3:7]))
print(np.allclose(get_observation([])["robot0_cartesian_pos"][:3], now["robot0_cartesian_pos"][:3], atol=0.005))
"""
    result, calls = episode("robosuite:TwoArmHandover", program, 2)
    assert result.status == st.OK, result.error
    lines = result.stdout.strip().split("\n")
    assert lines[0] == "REACHED" and lines[1] == "[0.0, 0.0, 0.06] [0.0, 0.0, 0.06]"
    assert lines[2] == "IK_FAILED" and lines[3] == "True"  # arm 1 out of reach: arm 0 does not move either
    both = [c for c in calls if c.primitive == "move_to_pose_both"]
    assert both[0].status == st.OK and both[1].status == st.IK_FAILED and "arm1" in both[1].message
    assert {"ik_arm0", "ik_arm1", "plan"} <= set(both[0].artifacts)


def test_a_pot_held_by_both_arms_is_carried_by_both_in_the_collision_check():
    # Each gripper pinches one handle; without the shared hold the pot would ride with one arm and
    # the lift would be refused as the other gripper "colliding" with the handle it holds.
    program = (Path(__file__).resolve().parents[1] / "programs" / "robosuite_twoarmlift.py").read_text()
    result, calls = episode("robosuite:TwoArmLift", program, 3)
    assert result.status == st.OK and result.success, result.error
    lift = [c for c in calls if c.primitive == "move_to_pose_both"][-1]
    # Checked, not skipped: "straight_unchecked" would mean the program turned the check off.
    assert lift.status == st.OK and lift.artifacts["plan"]["method"] in ("straight", "rrt_connect")
