# Camera-only Stack: pick the red cube and set it down on the green cube.
# World frame = robot base, metres, quaternions [w, x, y, z].

PICK_PROMPT = "red cube"
PLACE_PROMPT = "green cube"
TOP_FACE_BAND = 0.006  # points within this of an object's highest point form its top face, m
APPROACH_HEIGHT = 0.10  # pre-grasp / pre-place height above the target, m
CARRY_HEIGHT = 0.15  # travel height of the grasp point above the table, m
PLACE_CLEARANCE = 0.012  # gap between the held cube and the green cube when releasing, m
MIN_SCORE = 0.5  # detections scoring less are likely something else
OBSERVE_TRIES = 3  # observations at most before giving up on a missing cube


def top_down_quaternion(yaw):
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def gripper_yaw(quat_wxyz):
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def edge_yaw(points_xy):
    # Edge direction of a square top face: the rotation with the smallest axis-aligned box.
    centred = points_xy - points_xy.mean(axis=0)
    best_yaw, best_area = 0.0, None
    for yaw in np.linspace(0.0, math.pi / 2.0, 46, endpoint=False):
        c, s = math.cos(yaw), math.sin(yaw)
        rotated = centred @ np.array([[c, -s], [s, c]])
        area = np.ptp(rotated[:, 0]) * np.ptp(rotated[:, 1])
        if best_area is None or area < best_area:
            best_yaw, best_area = yaw, area
    return best_yaw


def choose_grasp_yaw(face_points_xy, current_yaw, neighbours_xy):
    # Any of the four edge directions grips a square face; take the one needing the least wrist
    # turn. (neighbours_xy: centres of nearby objects, which this rule does not consider.)
    turn = (edge_yaw(face_points_xy) - current_yaw + math.pi / 4.0) % (math.pi / 2.0) - math.pi / 4.0
    return current_yaw + turn


def locate_box(prompt, cam):
    # Top-face centre (x, y), top height and the top-face points of a box on the table.
    # None when the prompt finds nothing confident.
    dets = [d for d in segment_text_prompt(cam["images"]["rgb"], prompt) if d["score"] >= MIN_SCORE]
    if not dets:
        return None
    pts = mask_to_world_points(dets[0]["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])
    if len(pts) < 10:
        return None
    top_z = np.percentile(pts[:, 2], 98)
    top = pts[pts[:, 2] > top_z - TOP_FACE_BAND]
    # The middle of the face's extent: its points crowd along the edge nearest the camera.
    low, high = np.percentile(top[:, :2], [2, 98], axis=0)
    return (low + high) / 2.0, top_z, top


# Look again (a fresh observation, new noise) while either cube is missed.
for _ in range(OBSERVE_TRIES):
    obs = get_observation(["agentview"])
    cam = obs["agentview"]
    red, green = locate_box(PICK_PROMPT, cam), locate_box(PLACE_PROMPT, cam)
    if red is not None and green is not None:
        break
if red is None:
    raise RuntimeError(f"no '{PICK_PROMPT}' in view")
if green is None:
    raise RuntimeError(f"no '{PLACE_PROMPT}' in view")
red_xy, red_top, red_face = red
green_xy, green_top, green_face = green
tables = [d for d in segment_text_prompt(cam["images"]["rgb"], "table") if d["score"] >= MIN_SCORE]
table_pts = np.zeros((0, 3))
if tables:
    table_pts = mask_to_world_points(tables[0]["mask"], cam["images"]["depth"], cam["intrinsics"], cam["pose_mat"])
table_z = np.median(table_pts[:, 2]) if len(table_pts) else red_top - 0.04  # the red cube is about 4 cm
red_half = (red_top - table_z) / 2.0
wrist = gripper_yaw(obs["robot0_cartesian_pos"][3:7])
grasp = np.array([red_xy[0], red_xy[1], red_top - red_half])
grasp_quat = top_down_quaternion(choose_grasp_yaw(red_face[:, :2], wrist, [green_xy]))
place_quat = top_down_quaternion(choose_grasp_yaw(green_face[:, :2], wrist, []))
print("red", np.round(grasp, 3), "green top", np.round([green_xy[0], green_xy[1], green_top], 3))

open_gripper()
move_to_pose(grasp + np.array([0.0, 0.0, APPROACH_HEIGHT]), grasp_quat)
move_to_pose(grasp, grasp_quat)
if close_gripper() < 0.005:
    raise RuntimeError(f"missed the {PICK_PROMPT}")
carry_z = table_z + CARRY_HEIGHT
move_to_pose(np.array([grasp[0], grasp[1], carry_z]), grasp_quat)
move_to_pose(np.array([green_xy[0], green_xy[1], carry_z]), place_quat)
release_z = green_top + red_half + PLACE_CLEARANCE
move_to_pose(np.array([green_xy[0], green_xy[1], release_z]), place_quat)
open_gripper()
move_to_pose(np.array([green_xy[0], green_xy[1], carry_z]), place_quat)
