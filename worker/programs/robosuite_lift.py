# Camera-only Lift: find the red cube in the agentview image, grasp it from above, lift it.
# Uses only the robot API; world frame = robot base, metres, quaternions [w, x, y, z].

CUBE_PROMPT = "red cube"
TABLE_PROMPT = "table"
APPROACH_HEIGHT = 0.10  # pre-grasp height above the cube centre, m
LIFT_HEIGHT = 0.20  # final height above the grasp, m
TOP_FACE_BAND = 0.008  # points within this of the highest cube point form the top face (depth noise ~2 mm), m
MIN_SCORE = 0.5  # detections scoring less are likely something else
OBSERVE_TRIES = 3  # observations at most before giving up on a missing cube


def top_down_quaternion(yaw):
    # Gripper z pointing down ([0, 1, 0, 0]) turned by yaw about the world z axis.
    return np.array([0.0, math.cos(yaw / 2.0), math.sin(yaw / 2.0), 0.0])


def gripper_yaw(quat_wxyz):
    # Heading of the gripper's x axis in the world xy plane.
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (x * y + w * z), 1.0 - 2.0 * (y * y + z * z))


def face_yaw(points_xy, current_yaw):
    # Angle of the top face's edges: the rotation whose axis-aligned box around the points is smallest.
    centred = points_xy - points_xy.mean(axis=0)
    best_yaw, best_area = 0.0, None
    for yaw in np.linspace(0.0, math.pi / 2.0, 46, endpoint=False):
        c, s = math.cos(yaw), math.sin(yaw)
        rotated = centred @ np.array([[c, -s], [s, c]])
        area = np.ptp(rotated[:, 0]) * np.ptp(rotated[:, 1])
        if best_area is None or area < best_area:
            best_yaw, best_area = yaw, area
    # Any of the four edge directions grips a cube; take the one needing the least wrist turn.
    turn = (best_yaw - current_yaw + math.pi / 4.0) % (math.pi / 2.0) - math.pi / 4.0
    return current_yaw + turn


def confident(rgb, prompt):
    return [d for d in segment_text_prompt(rgb, prompt) if d["score"] >= MIN_SCORE]


# Look again (a fresh observation, new noise) while the cube is missed.
for _ in range(OBSERVE_TRIES):
    obs = get_observation(["agentview"])
    cam = obs["agentview"]
    rgb, depth = cam["images"]["rgb"], cam["images"]["depth"]
    K, cam_pose = cam["intrinsics"], cam["pose_mat"]
    cubes = confident(rgb, CUBE_PROMPT)
    if cubes:
        break
if not cubes:
    raise RuntimeError(f"no '{CUBE_PROMPT}' in the agentview image")
cube_points = mask_to_world_points(cubes[0]["mask"], depth, K, cam_pose)
top_z = np.percentile(cube_points[:, 2], 98)
top_face = cube_points[cube_points[:, 2] > top_z - TOP_FACE_BAND]
# The middle of the top face's extent: its points are denser along the edge nearest the camera.
low, high = np.percentile(top_face[:, :2], [2, 98], axis=0)
center_xy = (low + high) / 2.0

# The table height next to the cube gives the cube's bottom; the grasp goes to the middle. Without a
# table detection (or table points near the cube), assume the 4 cm cube of this task.
tables = confident(rgb, TABLE_PROMPT)
near = np.zeros((0, 3))
if tables:
    table_points = mask_to_world_points(tables[0]["mask"], depth, K, cam_pose)
    near = table_points[np.linalg.norm(table_points[:, :2] - center_xy, axis=1) < 0.12]
table_z = np.median(near[:, 2]) if len(near) else top_z - 0.04
grasp = np.array([center_xy[0], center_xy[1], (top_z + table_z) / 2.0])

quat = top_down_quaternion(face_yaw(top_face[:, :2], gripper_yaw(obs["robot0_cartesian_pos"][3:7])))
print("cube centre", np.round(grasp, 4), "table z", round(float(table_z), 4))

open_gripper()
if move_to_pose(grasp + np.array([0.0, 0.0, APPROACH_HEIGHT]), quat) != "REACHED":
    raise RuntimeError("could not reach the pre-grasp pose")
move_to_pose(grasp, quat)
width = close_gripper()
if width < 0.005:
    raise RuntimeError("grasp missed the cube")
move_to_pose(grasp + np.array([0.0, 0.0, LIFT_HEIGHT]), quat)
