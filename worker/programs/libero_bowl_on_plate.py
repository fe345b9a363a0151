# Camera-only LIBERO-90 "put the black bowl on the plate": the bowl is wider than the gripper opens,
# so pinch its rim on the side facing the robot, carry it over the plate and set it down.
# World frame = robot base, metres, quaternions [w, x, y, z].

OBJECT_PROMPT = "black bowl"
TARGET_PROMPT = "plate"
RIM_GRIP_DEPTH = 0.015  # the fingers close this far below the rim, m
LIFT = 0.12  # carry height above the start, m
SET_DOWN_GAP = 0.015  # bowl bottom above the plate when released, m
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


def footprint(points):
    low, high = np.percentile(points[:, :2], [2, 98], axis=0)
    return (low + high) / 2.0, (high - low) / 2.0


obs, (bowl, plate) = look([OBJECT_PROMPT, TARGET_PROMPT])
bowl_centre, bowl_half = footprint(bowl)
plate_centre, _ = footprint(plate)
rim_z = np.percentile(bowl[:, 2], 98)
bowl_bottom = np.percentile(bowl[:, 2], 2)
plate_top = np.percentile(plate[:, 2], 98)

# Pinch the rim on the side nearest the robot, fingers closing across the wall (radially).
toward_robot = -bowl_centre / np.linalg.norm(bowl_centre)
radius = float(np.mean(bowl_half)) - 0.006  # the wall's middle, just inside the outer edge
rim_xy = bowl_centre + radius * toward_robot
radial_yaw = math.atan2(toward_robot[0], -toward_robot[1])  # gripper y axis along the radius
current = gripper_yaw(obs["robot0_cartesian_pos"][3:7])
yaw = current + ((radial_yaw - current + math.pi / 2.0) % math.pi - math.pi / 2.0)
quat = top_down_quaternion(yaw)
grip = np.array([rim_xy[0], rim_xy[1], rim_z - RIM_GRIP_DEPTH])
print("bowl", np.round(bowl_centre, 3), "radius", round(radius, 3), "plate", np.round(plate_centre, 3))

open_gripper()
move_to_pose(grip + np.array([0.0, 0.0, 0.08]), quat)
move_to_pose(grip, quat)
if close_gripper() < 0.002:
    raise RuntimeError("missed the rim")
move_to_pose(grip + np.array([0.0, 0.0, LIFT]), quat)
# Keep the grip's offset from the bowl's centre so the bowl ends up centred on the plate.
offset = rim_xy - bowl_centre
place_xy = plate_centre + offset
lift_z = grip[2] + LIFT
move_to_pose(np.array([place_xy[0], place_xy[1], lift_z]), quat)
release_z = plate_top + SET_DOWN_GAP + (grip[2] - bowl_bottom)
move_to_pose(np.array([place_xy[0], place_xy[1], release_z]), quat)
open_gripper()
move_to_pose(np.array([place_xy[0], place_xy[1], lift_z]), quat)
