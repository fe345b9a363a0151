# Camera-only PickPlaceCan: take the red can out of the left bin and put it in the compartment of the
# right bin that shows the can's outline. World frame = robot base, metres, quaternions [w, x, y, z].

OBJECT_PROMPT = "red can"
TARGET_PROMPT = "can target marker"
GRASP_BELOW_TOP = 0.025  # the fingers close this far below the can's top, m
CLEARANCE_ABOVE = 0.10  # travel and release height above the highest thing involved, m
TOWARD_ROBOT = 0.06  # release this far from the outline towards the robot: the compartment is
# about 0.2 x 0.25 m and its far corner is at the edge of the arm's top-down reach
TOP_BAND = 0.006


def top_down_quaternion(yaw):
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def gripper_yaw(quat_wxyz):
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def top_of(prompt, cam):
    # (x, y) of the top-face centre and the top height of the best match for the prompt.
    dets = segment_text_prompt(cam["images"]["rgb"], prompt)
    if not dets:
        raise RuntimeError(f"no '{prompt}' in view")
    pts = mask_to_world_points(dets[0]["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])
    top_z = np.percentile(pts[:, 2], 98)
    top = pts[pts[:, 2] > top_z - TOP_BAND]
    return top[:, :2].mean(axis=0), top_z


obs = get_observation(["agentview"])
cam = obs["agentview"]
can_xy, can_top = top_of(OBJECT_PROMPT, cam)
marker_xy, target_top = top_of(TARGET_PROMPT, cam)
target_xy = marker_xy - TOWARD_ROBOT * marker_xy / np.linalg.norm(marker_xy)
quat = top_down_quaternion(gripper_yaw(obs["robot0_cartesian_pos"][3:7]))
travel_z = max(can_top, target_top) + CLEARANCE_ABOVE
grasp = np.array([can_xy[0], can_xy[1], can_top - GRASP_BELOW_TOP])
print("can", np.round(grasp, 3), "outline", np.round(marker_xy, 3), "release at", np.round(target_xy, 3))

open_gripper()
move_to_pose(np.array([can_xy[0], can_xy[1], travel_z]), quat)
move_to_pose(grasp, quat)
if close_gripper() < 0.005:
    raise RuntimeError("missed the can")
move_to_pose(np.array([can_xy[0], can_xy[1], travel_z]), quat)
# Let go above the compartment: lower down, the can would meet the compartment's divider (the motion
# planner refuses that pose), and the can lands upright from this height.
if move_to_pose(np.array([target_xy[0], target_xy[1], travel_z]), quat) != "REACHED":
    raise RuntimeError("could not reach the compartment")
open_gripper()
move_to_pose(np.array([target_xy[0], target_xy[1], travel_z]), quat)
