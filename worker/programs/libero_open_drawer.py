# Camera-only LIBERO "open the top drawer of the cabinet": pick the named drawer's front among what the
# segmenter returns (by height), find its face and the handle bar that sticks out of it, grasp the bar
# from the front with the fingers closing across it, and pull the drawer out along the face's outward
# normal. Tuned on libero_90 KITCHEN_SCENE1 (top drawer) and libero_goal (middle drawer); the bottom
# drawer's handle sits too low for these grasps. World frame = robot base, metres, quaternions [w, x, y, z].

DRAWER_PROMPT = "top drawer"
CABINET_PROMPT = "cabinet"
STANDOFF = 0.10  # start of the grasp approach, this far back from the handle along the approach, m
HANDLE_BAND = 0.012  # points this far in front of the drawer face belong to the handle, m
BAR_HALF = 0.008  # half the handle bar's thickness (LIBERO wooden_cabinet.xml handle box), m
TILTS = (0.0, 0.3, 0.6)  # downward tilts of the approach tried in turn, rad
ROLLS = (0.0, 0.5, -0.5, 1.0, -1.0)  # rolls of the finger line away from vertical tried in turn, rad
PULL = 0.17  # pull this far (LIBERO's WoodenCabinet: open past 0.14 m, the slide stops at 0.16 m), m
FRONT_THICKNESS = 0.035  # a drawer front's points spread less than this across the front (std), m
FRONT_HEIGHT = 0.11  # a drawer front's points span less height than this (5th-95th percentile), m
MIN_SCORE = 0.5  # detections scoring less are likely something else
OBSERVE_TRIES = 3  # observations at most before giving up on a missing object


def points_of(prompt, cam):
    # World points of each confident match for the prompt, best first (empty when there is none).
    dets = [d for d in segment_text_prompt(cam["images"]["rgb"], prompt) if d["score"] >= MIN_SCORE]
    found = []
    for d in dets:
        pts = mask_to_world_points(d["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])
        if len(pts) < 10:
            continue
        # A few pixels on a mask's silhouette mix the object with what lies behind it and back-project
        # far away: keep what lies within the 1st-99th percentile box, widened by 2 cm.
        low, high = np.percentile(pts, [1, 99], axis=0)
        found.append(pts[np.all((pts > low - 0.02) & (pts < high + 0.02), axis=1)])
    return found


def look(prompts):
    # (observation, [points per prompt]); a missed object is looked for again in a fresh observation
    # (new noise, and a model that missed it once usually finds it the next time).
    for _ in range(OBSERVE_TRIES):
        obs = get_observation(["agentview"])
        found = [choose(p, points_of(p, obs["agentview"])) for p in prompts]
        if all(f is not None for f in found):
            return obs, found
    missing = [p for p, f in zip(prompts, found) if f is None]
    raise RuntimeError(f"no '{missing[0]}' in view")


def plan_spread(points):
    # (least, most) standard deviation of the points in plan view, m.
    values = np.linalg.eigvalsh(np.cov((points[:, :2] - np.median(points[:, :2], axis=0)).T))
    return math.sqrt(max(values[0], 0.0)), math.sqrt(max(values[1], 0.0))


def is_front(points):
    # A drawer front: thin in plan view and no taller than one drawer (the cabinet body is taller).
    low, high = np.percentile(points[:, 2], [5, 95])
    return plan_spread(points)[0] < FRONT_THICKNESS and high - low < FRONT_HEIGHT


def choose(prompt, candidates):
    # A model asked for "top drawer" also returns the other drawers and the cabinet body with high
    # scores: the level word picks among the drawer fronts (is_front) by height.
    # The cabinet body is the candidate that spreads widest.
    if not candidates:
        return None
    if prompt == CABINET_PROMPT:
        return max(candidates, key=lambda c: plan_spread(c)[1])
    level = next((w for w in ("top", "middle", "bottom") if w in prompt.split()), None)
    if level is None:
        return candidates[0]
    fronts = sorted((c for c in candidates if is_front(c)), key=lambda c: np.median(c[:, 2]))
    if not fronts or (level == "middle" and len(fronts) < 3):
        return None
    return {"top": fronts[-1], "bottom": fronts[0], "middle": fronts[len(fronts) // 2]}[level]


def footprint_centre(points):
    low, high = np.percentile(points[:, :2], [2, 98], axis=0)
    return (low + high) / 2.0


obs, (drawer, cabinet) = look([DRAWER_PROMPT, CABINET_PROMPT])


# A closed drawer shows its front face: in plan view a line whose normal is the slide axis (the least
# spread direction of the points). The normal points away from the cabinet body's centre.
def face_normal(points):
    xy = points[:, :2] - np.median(points[:, :2], axis=0)
    return np.linalg.eigh(np.cov(xy.T))[1][:, 0]


# Fitted twice: the second fit keeps only the points on the first fit's face line (the handle and the
# drawer's visible edges would tilt it).
normal = face_normal(drawer)
off_face = (drawer[:, :2] - np.median(drawer[:, :2], axis=0)) @ normal
normal = face_normal(drawer[np.abs(off_face) < HANDLE_BAND])
if np.dot(normal, footprint_centre(drawer) - footprint_centre(cabinet)) < 0:
    normal = -normal
outward = np.array([normal[0], normal[1], 0.0])

depth_along = drawer @ outward
face = np.median(depth_along)
handle = drawer[depth_along > face + HANDLE_BAND]
if len(handle) < 5:
    raise RuntimeError("no handle sticks out of the drawer front")
front = np.percentile(handle @ outward, 95)
centre = np.median(handle, axis=0)
bar = centre + (front - BAR_HALF - centre @ outward) * outward
print("drawer normal", np.round(outward[:2], 2), "handle", np.round(bar, 3), "points", len(handle))

# Fingers point into the cabinet and close across the horizontal bar: vertically when the hand points
# straight in; a lower drawer's handle puts the hand's lower edge near the table, so the finger line is
# also rolled about the approach (the hand then spans less height) or the approach tilted down. Take the
# first pose the arm reaches and the planner lets it move to.
side = np.cross(np.array([0.0, 0.0, 1.0]), outward)
quat = None
open_gripper()
for tilt in TILTS:
    for roll in ROLLS:
        for sign in (1.0, -1.0):
            approach = -outward * math.cos(tilt) - np.array([0.0, 0.0, math.sin(tilt)])
            upright = np.cross(approach, side)
            finger_line = math.cos(roll) * upright + math.sin(roll) * np.cross(approach, upright)
            pose = np.eye(4)
            pose[:3, 2] = approach
            pose[:3, 1] = sign * finger_line
            pose[:3, 0] = np.cross(pose[:3, 1], pose[:3, 2])
            _, candidate = decompose_transform(pose)
            joints = solve_ik(bar - STANDOFF * approach, candidate)  # back along the approach
            if joints is None or solve_ik(bar, candidate) is None:
                continue
            if move_to_joints(joints) == "REACHED":
                quat = candidate
                break
        if quat is not None:
            break
    if quat is not None:
        break
if quat is None:
    raise RuntimeError("could not get in front of the handle")
print("approach tilted down", tilt, "rad, finger line rolled", roll * sign, "rad")
# The fingers close around the bar, touching the drawer front on purpose.
move_to_pose(bar, quat, collision_check=False)
width = close_gripper()
print("gripper closed to", round(float(width), 4))
move_to_pose(bar + PULL * outward, quat, collision_check=False)
open_gripper()
move_to_pose(bar + (PULL + STANDOFF) * outward, quat, collision_check=False)
