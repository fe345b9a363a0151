# Camera-only LIBERO-90 "close the top drawer of the cabinet": find how far the top drawer sticks out
# of the cabinet and push its front face back until it is flush. World frame = robot base, metres,
# quaternions [w, x, y, z].

DRAWER_PROMPT = "top drawer"
CABINET_PROMPT = "cabinet"
STANDOFF = 0.08  # start of the push, in front of the drawer face, m
OVERPUSH = 0.02  # push this far past flush so the drawer seats, m
BELOW_TOP = 0.015  # push this far below the top edge of the drawer front (above the handle), m
FACE_BAND = 0.01
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


def choose(prompt, candidates):
    return candidates[0] if candidates else None


obs, (drawer, cabinet) = look([DRAWER_PROMPT, CABINET_PROMPT])


# An open drawer sits beside the cabinet body along its slide axis: the offset between the centres of
# their footprints (2nd-98th percentile boxes, robust to what one camera sees of each) points out.
def footprint_centre(points):
    low, high = np.percentile(points[:, :2], [2, 98], axis=0)
    return (low + high) / 2.0


offset = footprint_centre(drawer) - footprint_centre(cabinet)
outward = np.array([offset[0], offset[1], 0.0]) / np.linalg.norm(offset)

cabinet_front = np.percentile(cabinet @ outward, 98)
drawer_front = np.percentile(drawer @ outward, 98)
opening = drawer_front - cabinet_front
face = drawer[drawer @ outward > drawer_front - FACE_BAND]
contact = np.array([np.median(face[:, 0]), np.median(face[:, 1]), np.max(face[:, 2]) - BELOW_TOP])
print("drawer out by", round(float(opening), 3), "m along", np.round(outward[:2], 2))
if opening < 0.01:
    print("already closed")
else:
    # Push fingertips first, tilted down by at most 45 degrees: a hand pointing straight down would
    # meet the cabinet's top panel just before the drawer is flush. Take the first tilt and finger
    # orientation the arm can reach.
    start = contact + STANDOFF * outward
    side = np.cross(np.array([0.0, 0.0, 1.0]), outward)
    quat, joints = None, None
    for tilt in (0.0, 0.25, 0.5, 0.8):
        for sign in (1.0, -1.0):
            pose = np.eye(4)
            pose[:3, 2] = -outward * math.cos(tilt) - np.array([0.0, 0.0, math.sin(tilt)])
            pose[:3, 1] = sign * side
            pose[:3, 0] = np.cross(pose[:3, 1], pose[:3, 2])
            _, candidate = decompose_transform(pose)
            joints = solve_ik(start, candidate)
            if joints is not None:
                quat = candidate
                break
        if quat is not None:
            break
    if quat is None:
        raise RuntimeError("no reachable pushing pose in front of the drawer")
    close_gripper()  # closed fingers make a small flat pusher
    if move_to_joints(joints) != "REACHED":
        raise RuntimeError("could not get in front of the drawer")
    # Pushing the drawer is contact on purpose: a static collision check would refuse it.
    move_to_pose(contact - (opening + OVERPUSH) * outward, quat, collision_check=False)
    move_to_pose(start, quat)
