# Compatibility corpus (written for ASPIRE web, in the style of programs published for the CaP-X /
# ASPIRE reduced robosuite API): lift the cube. Uses the published conventions on purpose: numpy and
# scipy imports, robot0_robotview, segment_sam3_text_prompt, plan_grasp raising AssertionError,
# select_top_down_grasp's (pose, score) tuple, solve_ik + move_to_joints, interpolate_segment(step=),
# robot0_gripper_qpos.
import numpy as np
from scipy.spatial.transform import Rotation

TOP_DOWN = np.array([0.0, 1.0, 0.0, 0.0])


def make_topdown_quat(yaw):
    R = Rotation.from_euler("z", yaw).as_matrix() @ np.diag([1.0, -1.0, -1.0])
    q = Rotation.from_matrix(R).as_quat()  # scipy: x, y, z, w
    return np.array([q[3], q[0], q[1], q[2]])


def best_mask(rgb, prompts, min_score=0.3):
    for prompt in prompts:
        results = segment_sam3_text_prompt(rgb, prompt)
        if results:
            best = max(results, key=lambda r: r["score"])
            if best["score"] >= min_score:
                return best["mask"], prompt
    return None, None


def move_pose(pos, quat):
    joints = solve_ik(pos, quat)
    if joints is not None:
        move_to_joints(joints)


mask = None
for attempt in range(3):
    obs = get_observation()
    cam = obs["robot0_robotview"]
    rgb, depth = cam["images"]["rgb"], cam["images"]["depth"]
    K, E = cam["intrinsics"], cam["pose_mat"]
    mask, used = best_mask(rgb, ["red cube", "cube"])
    if mask is not None:
        break
if mask is None:
    raise RuntimeError("cube not found")

pts = mask_to_world_points(mask, depth, K, E)
top_z = np.percentile(pts[:, 2], 95)
top = pts[pts[:, 2] > top_z - 0.008]
center = (np.percentile(top[:, :2], 2, axis=0) + np.percentile(top[:, :2], 98, axis=0)) / 2.0
obb = get_oriented_bounding_box_from_3d_points(top)
yaw = float(np.arctan2(obb["R"][1, 0], obb["R"][0, 0]))
grasp_pos = np.array([center[0], center[1], top_z - 0.02])
quat = make_topdown_quat(yaw)
try:
    poses, scores = plan_grasp(depth, K, mask)
    best, score = select_top_down_grasp(poses, scores, E)
    if best is not None:
        position, _ = decompose_transform(best)
        print("planned grasp", np.round(position, 3), "score", round(float(score), 3))
except AssertionError as exc:
    print("grasp planner:", exc)
print("using", used, "grasp at", np.round(grasp_pos, 3), "yaw", round(yaw, 3))

open_gripper()
pre = grasp_pos + np.array([0.0, 0.0, 0.10])
move_pose(pre, quat)
for waypoint in interpolate_segment(pre, grasp_pos, step=0.05)[1:]:
    move_pose(waypoint, quat)
close_gripper()
obs = get_observation()
finger = obs["robot0_gripper_qpos"][0]
print("finger joint after closing", round(float(finger), 4), "gripper", round(float(obs["robot_joint_pos"][-1]), 3))
if finger < 0.003:
    print("air grasp")
move_pose(grasp_pos + np.array([0.0, 0.0, 0.20]), quat)
