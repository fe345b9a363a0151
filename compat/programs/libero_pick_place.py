# Compatibility corpus (written for ASPIRE web, in the published CaP-X / ASPIRE LIBERO reduced-API
# style): put the black bowl on the plate. Published LIBERO conventions: the runner's globals obs and
# env (env.handle.task_language), agentview, point_prompt_molmo -> {prompt: (x, y)},
# segment_sam3_point_prompt, depth_to_point_cloud's (H, W, 3) camera-frame cloud, transform_points,
# subsample_point_cloud, filter_noise's tuple, goto_pose(..., z_approach=), goto_home_joint_position.
import numpy as np

print("task:", env.handle.task_language)


def depth2d(depth):
    return depth[:, :, 0] if depth.ndim == 3 else depth


def object_points(cam, prompt):
    rgb, depth = cam["images"]["rgb"], depth2d(cam["images"]["depth"])
    masks = [r for r in segment_sam3_text_prompt(rgb, prompt) if r["score"] > 0.3]
    if not masks:
        point = list(point_prompt_molmo(rgb, prompt).values())[0]
        if point[0] is None:
            return None
        masks = segment_sam3_point_prompt(rgb, (int(point[0]), int(point[1])))
        if not masks:
            return None
    mask = max(masks, key=lambda r: r["score"])["mask"]
    cloud = depth_to_point_cloud(depth, cam["intrinsics"])  # (H, W, 3), camera frame
    pts = cloud[mask & (depth > 0)]
    pts = transform_points(pts, cam["pose_mat"])
    pts = subsample_point_cloud(pts, max_points=5000)
    pts, _ = filter_noise(pts)
    return pts


cam = obs["agentview"]
bowl = object_points(cam, "black bowl")
plate = object_points(cam, "plate")
if bowl is None or plate is None or len(bowl) < 20 or len(plate) < 20:
    fresh = get_observation()
    bowl = object_points(fresh["agentview"], "black bowl")
    plate = object_points(fresh["agentview"], "plate")
if bowl is None or plate is None:
    raise RuntimeError("bowl or plate not found")


def box_centre(points):
    low, high = np.percentile(points[:, :2], [2, 98], axis=0)
    return (low + high) / 2.0, (high - low) / 2.0


centre, half = box_centre(bowl)
plate_centre, _ = box_centre(plate)
rim_z = np.percentile(bowl[:, 2], 98)
bottom_z = np.percentile(bowl[:, 2], 2)
plate_top = np.percentile(plate[:, 2], 98)
# Pinch the rim nearest the robot with the fingers closing across the wall (along the radius).
radial = -centre / np.linalg.norm(centre)
rim = centre + (float(np.mean(half)) - 0.006) * radial
yaw = np.arctan2(radial[0], -radial[1])
quat = np.array([0.0, np.cos(yaw / 2.0), np.sin(yaw / 2.0), 0.0])
grasp = np.array([rim[0], rim[1], rim_z - 0.015])

open_gripper()
goto_pose(grasp, quat, z_approach=0.08)
close_gripper()
state = get_observation()
print("gripper after closing", round(float(state["robot_cartesian_pos"][7]), 3))
goto_pose(grasp + np.array([0.0, 0.0, 0.12]), quat)
place = plate_centre + (rim - centre)
release_z = plate_top + 0.015 + (grasp[2] - bottom_z)
# Arrive from the carry height straight above the release point.
goto_pose(np.array([place[0], place[1], release_z]), quat, z_approach=max(0.0, grasp[2] + 0.12 - release_z))
open_gripper()
goto_home_joint_position()
