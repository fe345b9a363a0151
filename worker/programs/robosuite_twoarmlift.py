# Camera-only TwoArmLift: each arm grips the pot handle on its side from above, then both lift
# together so the pot stays level. World frame = robot0's base, metres, quaternions [w, x, y, z].

HANDLE_PROMPTS = ("green handle", "blue handle")
POT_PROMPT = "pot"
GRIP_BELOW_TOP = 0.012  # the fingers close this far below a handle's top, m
TOP_BAND = 0.015  # points this close under a handle's top belong to its bars, m
BAR_WIDTH = 0.015  # the outer bar's points lie this deep from the handle's outermost points, m
APPROACH = 0.10  # pre-grasp height above a grasp, m
LIFT = 0.20  # how far both arms raise the pot, m


def top_down_quaternion(yaw):
    # Gripper pointing down; its x axis at angle yaw in the xy plane, fingers closing across it.
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def gripper_yaw(quat_wxyz):
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def nearest_yaw(direction_yaw, current):
    turn = (direction_yaw - current + math.pi / 2.0) % math.pi - math.pi / 2.0
    return current + turn


def world_points(prompt, cam):
    dets = segment_text_prompt(cam["images"]["rgb"], prompt)
    if not dets:
        raise RuntimeError(f"no '{prompt}' in view")
    return mask_to_world_points(dets[0]["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])


def handle_grasp(prompt, cam, pot_xy):
    # A handle is a U of bars standing out from the pot wall; grip its outer bar, across it. The
    # silhouette's pixels also catch the table behind the thin bars: keep the points near its top.
    pts = world_points(prompt, cam)
    top = np.percentile(pts[:, 2], 97)
    pts = pts[pts[:, 2] > top - TOP_BAND]
    centre = np.median(pts[:, :2], axis=0)
    pts = pts[np.linalg.norm(pts[:, :2] - centre, axis=1) < 0.10]
    outward = centre - pot_xy
    outward /= np.linalg.norm(outward)
    reach = pts[:, :2] @ outward
    bar = pts[reach > np.percentile(reach, 97) - BAR_WIDTH]
    along = np.array([-outward[1], outward[0]])
    span = bar[:, :2] @ along
    mid = (np.percentile(span, 5) + np.percentile(span, 95)) / 2.0
    xy = along * mid + outward * np.median(bar[:, :2] @ outward)
    return np.array([xy[0], xy[1], top - GRIP_BELOW_TOP]), math.atan2(along[1], along[0])


obs = get_observation(["frontview"])
cam = obs["frontview"]
pot = world_points(POT_PROMPT, cam)
pot_xy = (np.percentile(pot[:, :2], 5, axis=0) + np.percentile(pot[:, :2], 95, axis=0)) / 2.0
grasps = [handle_grasp(p, cam, pot_xy) for p in HANDLE_PROMPTS]
grippers = [obs["robot0_cartesian_pos"][:3], obs["robot1_cartesian_pos"][:3]]
# Each arm takes the handle nearer to its own gripper.
d = [[np.linalg.norm(g[0][:2] - b[:2]) for g in grasps] for b in grippers]
order = (0, 1) if d[0][0] + d[1][1] <= d[0][1] + d[1][0] else (1, 0)
(p0, axis_yaw0), (p1, axis_yaw1) = grasps[order[0]], grasps[order[1]]
q0 = top_down_quaternion(nearest_yaw(axis_yaw0, gripper_yaw(obs["robot0_cartesian_pos"][3:7])))
q1 = top_down_quaternion(nearest_yaw(axis_yaw1, gripper_yaw(obs["robot1_cartesian_pos"][3:7])))
print("handles", np.round(p0, 3), np.round(p1, 3))
up = np.array([0.0, 0.0, APPROACH])
open_gripper_arm0()
open_gripper_arm1()
move_to_pose_both(p0 + up, q0, p1 + up, q1)
move_to_pose_both(p0, q0, p1, q1)
w0, w1 = close_gripper_arm0(), close_gripper_arm1()
if min(w0, w1) < 0.005:
    raise RuntimeError(f"missed a handle (widths {w0:.3f}, {w1:.3f} m)")
lift = np.array([0.0, 0.0, LIFT])
print(move_to_pose_both(p0 + lift, q0, p1 + lift, q1))
