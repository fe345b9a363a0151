# Compatibility corpus (written for ASPIRE web, in the published CaP-X / ASPIRE bimanual reduced-API
# style): arm 0 picks the hammer up by its handle and arm 1 takes it. Published conventions:
# robot0_robotview on a two-arm task, solve_ik_arm0/arm1 + move_to_joints_arm0/arm1,
# open/close_gripper_arm0/arm1, robot{0,1}_cartesian_pos, robot{0,1}_gripper_qpos.
import numpy as np

ARM0_DOWN_Y = np.array([0.0, 1.0, 0.0, 0.0])
ARM1_DOWN_Y = np.array([0.0, 0.0, 1.0, 0.0])


def handle_points(cam):
    for prompt in ("hammer handle", "hammer"):
        results = segment_sam3_text_prompt(cam["images"]["rgb"], prompt)
        results = [r for r in results if r["score"] > 0.3]
        if results:
            pts = mask_to_world_points(results[0]["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])
            centre = np.median(pts, axis=0)
            return pts[np.linalg.norm(pts - centre, axis=1) < 0.15]
    return None


def arm0_to(pos, quat):
    move_to_joints_arm0(solve_ik_arm0(pos, quat))


def arm1_to(pos, quat):
    move_to_joints_arm1(solve_ik_arm1(pos, quat))


pts = None
for attempt in range(3):
    obs = get_observation()
    pts = handle_points(obs["robot0_robotview"])
    if pts is not None and len(pts) > 20:
        break
if pts is None:
    raise RuntimeError("hammer not found")

box = get_oriented_bounding_box_from_3d_points(pts)
axis = box["R"][:, 0]
yaw = float(np.arctan2(axis[1], axis[0]))
quat0 = np.array([0.0, np.cos(yaw / 2.0), np.sin(yaw / 2.0), 0.0])
centre = np.median(pts, axis=0)
grip0 = np.array([centre[0], centre[1], np.percentile(pts[:, 2], 95) - 0.015])
print("arm0 at", np.round(obs["robot0_cartesian_pos"][:3], 3), "arm1 at", np.round(obs["robot1_cartesian_pos"][:3], 3))

open_gripper_arm0()
arm0_to(grip0 + np.array([0.0, 0.0, 0.10]), quat0)
arm0_to(grip0, quat0)
close_gripper_arm0()
obs = get_observation()
print("arm0 finger", round(float(obs["robot0_gripper_qpos"][0]), 4))
handover = np.array([0.74, 0.0, 0.15])
arm0_to(handover, ARM0_DOWN_Y)

obs = get_observation()
held = handle_points(obs["robot0_robotview"])
if held is None:
    raise RuntimeError("lost the hammer")
tip = held[held[:, 0] > np.percentile(held[:, 0], 75)]
grip1 = np.median(tip, axis=0) - np.array([0.03, 0.0, 0.0])
open_gripper_arm1()
arm1_to(grip1 + np.array([0.0, 0.0, 0.10]), ARM1_DOWN_Y)
arm1_to(grip1, ARM1_DOWN_Y)
close_gripper_arm1()
open_gripper_arm0()
arm0_to(handover + np.array([-0.15, 0.0, 0.05]), ARM0_DOWN_Y)
