# Camera-only PickPlaceCan: take the red can out of the left bin and put it in the compartment of the
# right bin that shows the can's outline. World frame = robot base, metres, quaternions [w, x, y, z].

OBJECT_PROMPT = "red can"
TARGET_PROMPT = "can target marker"
GRASP_BELOW_TOP = 0.025  # the fingers close this far below the can's top, m
CLEARANCE_ABOVE = 0.10  # travel and release height above the highest thing involved, m
TOWARD_ROBOT = 0.06  # release this far from the outline towards the compartment's near corner: the
# compartment is about 0.2 x 0.25 m and its far corner is at the edge of the arm's top-down reach
TOP_BAND = 0.006  # points this close under the can's top form its top face (depth noise ~2 mm), m
MIN_SCORE = 0.5  # detections scoring less are likely something else
ERODE_PIXELS = 0  # drop this many pixels of each mask's rim: boundary pixels mix in the background
LOOKS = 3  # observations averaged: each has independent depth and mask noise
OBSERVE_TRIES = 6  # observations at most before giving up on a missing detection


def top_down_quaternion(yaw):
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def gripper_yaw(quat_wxyz):
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def erode(mask, pixels):
    # Shrink a mask by `pixels` (4-neighbour); keep the original if too little would be left.
    inner = np.asarray(mask, dtype=bool)
    for _ in range(pixels):
        shrunk = inner.copy()
        shrunk[1:] &= inner[:-1]
        shrunk[:-1] &= inner[1:]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return inner if inner.sum() >= 30 else np.asarray(mask, dtype=bool)


def points_of(prompt, cam):
    # World points of the best confident match for the prompt (None when there is none).
    dets = [d for d in segment_text_prompt(cam["images"]["rgb"], prompt) if d["score"] >= MIN_SCORE]
    if not dets:
        return None
    mask = erode(dets[0]["mask"], ERODE_PIXELS)
    pts = mask_to_world_points(mask, cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])
    return pts if len(pts) >= 10 else None


def top_face(pts):
    # (x, y) centre of a can's top face and the top height. The face's points are denser on the rim
    # nearest the camera (the side wall just below it counts too, at the same x, y), so take the
    # middle of their extent rather than their mean.
    top_z = np.percentile(pts[:, 2], 98)
    top = pts[pts[:, 2] > top_z - TOP_BAND]
    low, high = np.percentile(top[:, :2], [2, 98], axis=0)
    return (low + high) / 2.0, top_z


def can_top(cam):
    # (x, y) of the can's top-face centre and its top height.
    pts = points_of(OBJECT_PROMPT, cam)
    return None if pts is None else top_face(pts)


def marker_centre(cam):
    # The outline is a can-shaped marker: (x, y) of its top-face centre and its top height.
    pts = points_of(TARGET_PROMPT, cam)
    return None if pts is None else top_face(pts)


def descend(pose, quat):
    # Move down onto the object. Noisy depth around its silhouette can put stray points where the
    # fingers go: the planner refuses, so look again (a fresh depth image replaces the old points).
    for _ in range(OBSERVE_TRIES):
        status = move_to_pose(pose, quat)
        if status != "PLANNING_ERROR":
            return status
        get_observation(["agentview"])
    return status


# Look a few times: the release point is a few cm from a divider, so average the estimates of
# independent observations, and look again while either object is missing.
cans, markers = [], []
for attempt in range(OBSERVE_TRIES):
    obs = get_observation(["agentview"])
    cam = obs["agentview"]
    for found, estimate in ((cans, can_top(cam)), (markers, marker_centre(cam))):
        if estimate is not None:
            found.append(estimate)
    if attempt + 1 >= LOOKS and cans and markers:
        break
if not cans:
    raise RuntimeError(f"no '{OBJECT_PROMPT}' in view")
if not markers:
    raise RuntimeError(f"no '{TARGET_PROMPT}' in view")
can_xy = np.median([c[0] for c in cans], axis=0)
top_z = float(np.median([c[1] for c in cans]))
marker_xy = np.median([m[0] for m in markers], axis=0)
target_top = float(np.median([m[1] for m in markers]))
# The bins are square to the robot's axes: step from the outline towards the compartment's corner
# nearest the robot, diagonally, so the can keeps a margin from both dividers.
toward_corner = -np.sign(marker_xy) / math.sqrt(2.0)
target_xy = marker_xy + TOWARD_ROBOT * toward_corner
quat = top_down_quaternion(gripper_yaw(obs["robot0_cartesian_pos"][3:7]))
travel_z = max(top_z, target_top) + CLEARANCE_ABOVE
grasp = np.array([can_xy[0], can_xy[1], top_z - GRASP_BELOW_TOP])
print("can", np.round(grasp, 3), "outline", np.round(marker_xy, 3), "release at", np.round(target_xy, 3))

open_gripper()
move_to_pose(np.array([can_xy[0], can_xy[1], travel_z]), quat)
descend(grasp, quat)
if close_gripper() < 0.005:
    raise RuntimeError("missed the can")
move_to_pose(np.array([can_xy[0], can_xy[1], travel_z]), quat)
# Let go above the compartment: lower down, the can would meet the compartment's divider (the motion
# planner refuses that pose), and the can lands upright from this height.
if move_to_pose(np.array([target_xy[0], target_xy[1], travel_z]), quat) != "REACHED":
    raise RuntimeError("could not reach the compartment")
open_gripper()
move_to_pose(np.array([target_xy[0], target_xy[1], travel_z]), quat)
