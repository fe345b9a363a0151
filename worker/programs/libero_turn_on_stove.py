# Camera-only LIBERO "turn on the stove": the stove's knob is the part that stands above the flat
# cooktop, a disc with an upright fin across it that turns about the vertical. Grasp the fin from above
# with the fingers closing across it and turn the wrist counter-clockwise (seen from above), which is the
# knob's "on" direction in LIBERO (flat_stove.xml: a hinge about +z from 0 to 2.1 rad; FlatStove in
# libero/envs/objects/articulated_objects.py: on past 0.5 rad). Tuned on libero_90 KITCHEN_SCENE3 and
# libero_goal. World frame = robot base, metres, quaternions [w, x, y, z].

STOVE_PROMPT = "stove"
ABOVE_COOKTOP = 0.012  # points this far above the cooktop's median height belong to the knob's fin, m
GRIP_DEPTH = 0.018  # the fingers close this far below the top of the fin, m
APPROACH = 0.08  # start of the descent above the grip, m
TURN = 1.1  # turn the knob by this much, rad (on past 0.5 rad, the hinge stops at 2.1 rad)
TURN_STEPS = 3  # the turn is done in this many equal wrist moves
MIN_SCORE = 0.5  # detections scoring less are likely something else
OBSERVE_TRIES = 3  # observations at most before giving up on a missing object


def top_down_quaternion(yaw):
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


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


def choose(prompt, candidates):
    return candidates[0] if candidates else None


obs, (stove,) = look([STOVE_PROMPT])
cooktop = np.median(stove[:, 2])
fin = stove[stove[:, 2] > cooktop + ABOVE_COOKTOP]
if len(fin) < 10:
    raise RuntimeError("nothing stands above the cooktop: no knob found")
# Keep the biggest cluster around the fin's median (stray high points elsewhere are noise).
centre = np.median(fin[:, :2], axis=0)
fin = fin[np.linalg.norm(fin[:, :2] - centre, axis=1) < 0.06]
centre = np.median(fin[:, :2], axis=0)
top = np.percentile(fin[:, 2], 95)
# The fin's long direction in plan view; the fingers close across it (gripper x along the fin).
_, vectors = np.linalg.eigh(np.cov((fin[:, :2] - centre).T))
along = vectors[:, 1]
fin_yaw = math.atan2(along[1], along[0])
grip = np.array([centre[0], centre[1], top - GRIP_DEPTH])
print("knob at", np.round(grip, 3), "fin yaw", round(fin_yaw, 2), "points", len(fin))

# The fin is symmetric: of the two yaws that grasp it, take one from which the whole turn is reachable.
yaw = None
for base in (fin_yaw, fin_yaw + math.pi, fin_yaw - math.pi):
    ends = [solve_ik(grip, top_down_quaternion(base + TURN * k / TURN_STEPS)) for k in range(TURN_STEPS + 1)]
    if all(j is not None for j in ends):
        yaw = base
        break
if yaw is None:
    raise RuntimeError("the knob cannot be turned from any grasp the arm reaches")

open_gripper()
move_to_pose(grip + np.array([0.0, 0.0, APPROACH]), top_down_quaternion(yaw))
move_to_pose(grip, top_down_quaternion(yaw), collision_check=False)
width = close_gripper()
print("gripper closed to", round(float(width), 4))
# Turning the knob is contact on purpose: a static collision check would refuse it.
for k in range(1, TURN_STEPS + 1):
    move_to_pose(grip, top_down_quaternion(yaw + TURN * k / TURN_STEPS), collision_check=False)
open_gripper()
move_to_pose(grip + np.array([0.0, 0.0, APPROACH]), top_down_quaternion(yaw + TURN), collision_check=False)
