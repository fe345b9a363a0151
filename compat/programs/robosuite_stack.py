# Compatibility corpus (written for ASPIRE web, in the published CaP-X / ASPIRE reduced-API style):
# stack the red cube on the green cube. Published conventions: imports, robot0_robotview,
# segment_sam3_text_prompt, pixel_to_world_point(u, v, z, intrinsics, extrinsics), normalize_vector,
# rotation_matrix_to_quaternion, solve_ik + move_to_joints, robot_cartesian_pos.
import math

import numpy as np


def topdown_quat(yaw):
    c, s = math.cos(yaw), math.sin(yaw)
    R = np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])  # gripper z down, x at angle yaw
    return rotation_matrix_to_quaternion(R)


def locate(cam, prompt):
    rgb, depth = cam["images"]["rgb"], cam["images"]["depth"]
    results = [r for r in segment_sam3_text_prompt(rgb, prompt) if r["score"] > 0.3]
    if not results:
        return None
    mask = results[0]["mask"]
    pts = mask_to_world_points(mask, depth, cam["intrinsics"], cam["pose_mat"])
    top_z = np.percentile(pts[:, 2], 95)
    top = pts[pts[:, 2] > top_z - 0.008]
    centre = (np.percentile(top[:, :2], 2, axis=0) + np.percentile(top[:, :2], 98, axis=0)) / 2.0
    # The pixel at the middle of the mask, back-projected, as a second opinion on the position.
    ys, xs = np.nonzero(mask)
    u, v = int(np.median(xs)), int(np.median(ys))
    if depth[v, u] > 0:
        seen = pixel_to_world_point(u, v, depth[v, u], cam["intrinsics"], cam["pose_mat"])
        print(prompt, "pixel", (u, v), "->", np.round(seen, 3))
    edge = normalize_vector(np.array([1.0, 0.0, 0.0]))
    return np.array([centre[0], centre[1], top_z]), top, edge


def go(pos, quat):
    move_to_joints(solve_ik(pos, quat))


red = green = None
for attempt in range(3):
    obs = get_observation()
    cam = obs["robot0_robotview"]
    red, green = locate(cam, "red cube"), locate(cam, "green cube")
    if red is not None and green is not None:
        break
if red is None or green is None:
    raise RuntimeError("cubes not found")

red_top, red_face, _ = red
green_top, _, _ = green
box = get_oriented_bounding_box_from_3d_points(red_face)
quat = topdown_quat(float(np.arctan2(box["R"][1, 0], box["R"][0, 0])))
grasp = red_top - np.array([0.0, 0.0, 0.02])
print("hand z before", round(float(obs["robot_cartesian_pos"][2]), 3))

open_gripper()
go(grasp + np.array([0.0, 0.0, 0.10]), quat)
go(grasp, quat)
close_gripper()
go(grasp + np.array([0.0, 0.0, 0.15]), quat)
place = green_top + np.array([0.0, 0.0, 0.03])
go(place + np.array([0.0, 0.0, 0.08]), quat)
go(place, quat)
open_gripper()
go(place + np.array([0.0, 0.0, 0.10]), quat)
