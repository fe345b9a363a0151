# Camera-only LIBERO-90 "pick up the alphabet soup and put it in the basket": grasp the can from above,
# carry it over the basket and let it drop in. World frame = robot base, metres, quaternions [w, x, y, z].

OBJECT_PROMPT = "alphabet soup"
CONTAINER_PROMPT = "basket"
GRASP_BELOW_TOP = 0.025  # the fingers close this far below the object's top, m
RIM_CLEARANCE = 0.03  # the can's bottom clears the basket rim by this much while carried, m
RELEASE_ABOVE_RIM = 0.01  # the can's bottom is this far above the rim when let go, m
MIN_SCORE = 0.5  # detections scoring less are likely something else
OBSERVE_TRIES = 3  # observations at most before giving up on a missing object


def top_down_quaternion(yaw):
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def gripper_yaw(quat_wxyz):
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


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


def footprint_centre(points):
    low, high = np.percentile(points[:, :2], [2, 98], axis=0)
    return (low + high) / 2.0


obs, (can, basket) = look([OBJECT_PROMPT, CONTAINER_PROMPT])
can_top = np.percentile(can[:, 2], 98)
can_bottom = np.percentile(can[:, 2], 2)
top_face = can[can[:, 2] > can_top - 0.006]
can_xy = np.median(top_face[:, :2], axis=0)
basket_xy = footprint_centre(basket)
rim_z = np.percentile(basket[:, 2], 98)
quat = top_down_quaternion(gripper_yaw(obs["robot0_cartesian_pos"][3:7]))
grasp = np.array([can_xy[0], can_xy[1], can_top - GRASP_BELOW_TOP])
below_grip = grasp[2] - can_bottom  # length of can under the fingers
carry_z = rim_z + below_grip + RIM_CLEARANCE
print("can", np.round(grasp, 3), "basket", np.round(basket_xy, 3), "rim", round(float(rim_z), 3))

open_gripper()
move_to_pose(grasp + np.array([0.0, 0.0, 0.08]), quat)
# Noisy depth around the can can put stray points where the fingers go: the planner then refuses,
# so look again (a fresh depth image replaces the old points) and retry.
for _ in range(OBSERVE_TRIES):
    if move_to_pose(grasp, quat) != "PLANNING_ERROR":
        break
    get_observation(["agentview"])
if close_gripper() < 0.005:
    raise RuntimeError(f"missed the {OBJECT_PROMPT}")
move_to_pose(np.array([grasp[0], grasp[1], carry_z]), quat)
move_to_pose(np.array([basket_xy[0], basket_xy[1], carry_z]), quat)
move_to_pose(np.array([basket_xy[0], basket_xy[1], rim_z + below_grip + RELEASE_ABOVE_RIM]), quat)
open_gripper()
move_to_pose(np.array([basket_xy[0], basket_xy[1], carry_z + 0.05]), quat)
