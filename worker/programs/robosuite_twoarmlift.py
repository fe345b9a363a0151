# Camera-only TwoArmLift: each arm grips the pot handle on its side from above, then both lift
# together so the pot stays level. World frame = robot0's base, metres, quaternions [w, x, y, z].

HANDLE_PROMPTS = ("green handle", "blue handle")
POT_PROMPT = "pot"
GRIP_BELOW_TOP = 0.012  # the fingers close this far below a handle's top, m
TOP_BAND = 0.015  # points this close under a handle's top belong to its bars, m
BAR_WIDTH = 0.015  # the outer bar's points lie this deep from the handle's outermost points, m
APPROACH = 0.10  # pre-grasp height above a grasp, m
LIFT = 0.20  # how far both arms raise the pot, m
MIN_SCORE = 0.5  # detections scoring less are likely something else
HANDLE_SEPARATION = 0.15  # the two handles stand on opposite sides of the pot: at least this far apart, m
OBSERVE_TRIES = 4  # observations at most before giving up on a missing pot or handle


def top_down_quaternion(yaw):
    # Gripper pointing down; its x axis at angle yaw in the xy plane, fingers closing across it.
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def gripper_yaw(quat_wxyz):
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def nearest_yaw(direction_yaw, current):
    turn = (direction_yaw - current + math.pi / 2.0) % math.pi - math.pi / 2.0
    return current + turn


def candidates(prompt, cam):
    # World points of each confident match for the prompt, best first.
    dets = [d for d in segment_text_prompt(cam["images"]["rgb"], prompt) if d["score"] >= MIN_SCORE]
    clouds = [mask_to_world_points(d["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"]) for d in dets]
    return [pts for pts in clouds if len(pts) >= 10]


def distinct_handles(cam):
    # One cloud per handle prompt, the two being different objects: a prompt whose own handle was
    # missed can answer with the other handle, so pick the best-scoring pair that lies far apart.
    first, second = (candidates(p, cam) for p in HANDLE_PROMPTS)
    for a in first:
        for b in second:
            if np.linalg.norm(np.median(a[:, :2], axis=0) - np.median(b[:, :2], axis=0)) > HANDLE_SEPARATION:
                return a, b
    return None


def handle_grasp(pts, pot_xy):
    # A handle is a U of bars standing out from the pot wall; grip its outer bar, across it. The
    # silhouette's pixels also catch the table behind the thin bars: keep the points near its top.
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


# Look until the pot and both handles are found (a thin handle is sometimes missed: look again).
for _ in range(OBSERVE_TRIES):
    obs = get_observation(["frontview"])
    cam = obs["frontview"]
    pots = candidates(POT_PROMPT, cam)
    handles = distinct_handles(cam)
    if pots and handles:
        break
if not pots:
    raise RuntimeError(f"no '{POT_PROMPT}' in view")
if not handles:
    raise RuntimeError(f"no '{HANDLE_PROMPTS[0]}' and '{HANDLE_PROMPTS[1]}' apart in view")
pot = pots[0]
pot_xy = (np.percentile(pot[:, :2], 5, axis=0) + np.percentile(pot[:, :2], 95, axis=0)) / 2.0
grasps = [handle_grasp(pts, pot_xy) for pts in handles]
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
# Noisy depth around the thin bars can put stray points where the fingers go: the planner then
# refuses, so look again (a fresh depth image replaces the old points) and retry.
for _ in range(OBSERVE_TRIES):
    if move_to_pose_both(p0, q0, p1, q1) != "PLANNING_ERROR":
        break
    get_observation(["frontview"])
w0, w1 = close_gripper_arm0(), close_gripper_arm1()
if min(w0, w1) < 0.005:
    raise RuntimeError(f"missed a handle (widths {w0:.3f}, {w1:.3f} m)")
lift = np.array([0.0, 0.0, LIFT])
print(move_to_pose_both(p0 + lift, q0, p1 + lift, q1))
