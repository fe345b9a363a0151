# Camera-only TwoArmHandover: arm 0 picks the hammer up by the handle near its head, holds it out
# between the robots with the free end of the handle towards arm 1, arm 1 takes the handle, arm 0
# lets go. World frame = robot0's base (arm 1 stands about 1.6 m along +x, facing arm 0), metres,
# quaternions [w, x, y, z].

HANDLE_PROMPT = "hammer handle"
HEAD_PROMPT = "hammer head"
HANDOVER_X = 0.74  # where arm 0 holds the hammer out, along the line between the robots, m
HANDOVER_Z = 0.15  # handover height, m (the table top is about 0.11 m below the base)
ARM0_FROM_CENTRE = -0.05  # arm 0's grip along the handle from its centre (negative: towards the head), m
FREE_END_PERCENT = 25.0  # the handle points this far out (by x) count as its free end, percent
FREE_END_INSET = 0.03  # arm 1 grips this far in from the free end's middle, m
APPROACH = 0.10  # pre-grasp height above a grasp, m
MIN_SCORE = 0.5  # detections scoring less are likely something else
LOOKS = 3  # observations of the held hammer whose estimates are combined
OBSERVE_TRIES = 4  # observations at most before giving up on a missing detection


def top_down_quaternion(yaw):
    # Gripper pointing down; its x axis at angle yaw in the xy plane, fingers closing across it.
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def gripper_yaw(quat_wxyz):
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def nearest_yaw(direction_yaw, current):
    # The handle can lie along +x or -x of the gripper: take whichever needs less wrist turn.
    turn = (direction_yaw - current + math.pi / 2.0) % math.pi - math.pi / 2.0
    return current + turn


def points_of(prompt, cam):
    # World points of the best confident match for the prompt (None when there is none).
    dets = [d for d in segment_text_prompt(cam["images"]["rgb"], prompt) if d["score"] >= MIN_SCORE]
    if not dets:
        return None
    pts = mask_to_world_points(dets[0]["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])
    # Mask edges can pick up background depth: keep points near the median.
    centre = np.median(pts, axis=0)
    pts = pts[np.linalg.norm(pts - centre, axis=1) < 0.15]
    return pts if len(pts) >= 10 else None


def look(camera, prompts):
    # (observation, [points per prompt]); a missed object is looked for again in a fresh observation.
    for _ in range(OBSERVE_TRIES):
        obs = get_observation([camera])
        found = [points_of(p, obs[camera]) for p in prompts]
        if all(f is not None for f in found):
            return obs, found
    missing = [p for p, f in zip(prompts, found) if f is None]
    raise RuntimeError(f"no '{missing[0]}' in view")


def descend(move, pose, quat, camera):
    # Noisy depth around the handle can put stray points where the fingers go: the planner then
    # refuses, so look again (a fresh depth image replaces the old points) and retry.
    for _ in range(OBSERVE_TRIES):
        status = move(pose, quat)
        if status != "PLANNING_ERROR":
            return status
        get_observation([camera])
    return status


obs, (handle, head) = look("agentview", [HANDLE_PROMPT, HEAD_PROMPT])
box = get_oriented_bounding_box_from_3d_points(handle)
axis = np.array([box["R"][0, 0], box["R"][1, 0], 0.0])
axis /= np.linalg.norm(axis)
centre = np.median(handle, axis=0)
if (centre - np.median(head, axis=0))[:2] @ axis[:2] < 0:
    axis = -axis  # now pointing from the head towards the free end of the handle
handle_z = np.percentile(handle[:, 2], 95) - 0.015  # axis of the handle, just below its top

# Arm 0 picks the hammer up near the head.
yaw0 = nearest_yaw(math.atan2(axis[1], axis[0]), gripper_yaw(obs["robot0_cartesian_pos"][3:7]))
q0 = top_down_quaternion(yaw0)
grip0 = np.array([centre[0], centre[1], handle_z]) + ARM0_FROM_CENTRE * axis
open_gripper_arm0()
move_to_pose_arm0(grip0 + np.array([0.0, 0.0, APPROACH]), q0)
descend(move_to_pose_arm0, grip0, q0, "agentview")
if close_gripper_arm0() < 0.005:
    raise RuntimeError("arm 0 missed the handle")
move_to_pose_arm0(grip0 + np.array([0.0, 0.0, APPROACH]), q0)

# Turn the hammer so its free end points at arm 1 (+x). The handle direction in the gripper frame
# is kept by the grasp: +x of the gripper if the handle ran along the gripper's x, else -x.
gripper_x = np.array([math.cos(yaw0), math.sin(yaw0), 0.0])
handover_yaw = 0.0 if axis @ gripper_x > 0 else math.pi
handover0 = np.array([HANDOVER_X, 0.0, HANDOVER_Z])
if move_to_pose_arm0(handover0, top_down_quaternion(handover_yaw)) != "REACHED":
    raise RuntimeError("arm 0 could not reach the handover pose")

# Held near its head, the hammer sags in arm 0's grip: look again and aim arm 1 at the handle as it
# hangs now, a few cm in from its free end (the handle points farthest along +x, towards arm 1).
# Each look has independent depth and mask noise: aim at the median of a few looks' estimates.
aims = []
for _ in range(LOOKS):
    _, (hanging,) = look("frontview", [HANDLE_PROMPT])
    reach = hanging[:, 0]
    free_end = hanging[reach > np.percentile(reach, 100.0 - FREE_END_PERCENT)]
    aims.append(np.median(free_end, axis=0))
aim = np.median(aims, axis=0)
grip1 = np.array([aim[0] - FREE_END_INSET, aim[1], aim[2]])
q1 = top_down_quaternion(nearest_yaw(0.0, gripper_yaw(obs["robot1_cartesian_pos"][3:7])))
open_gripper_arm1()
move_to_pose_arm1(grip1 + np.array([0.0, 0.0, APPROACH]), q1)
descend(move_to_pose_arm1, grip1, q1, "frontview")
if close_gripper_arm1() < 0.005:
    raise RuntimeError("arm 1 missed the handle")
open_gripper_arm0()
move_to_pose_arm0(handover0 + np.array([-0.15, 0.0, 0.05]), top_down_quaternion(handover_yaw))
move_to_pose_arm1(grip1 + np.array([0.0, 0.0, 0.05]), q1)
