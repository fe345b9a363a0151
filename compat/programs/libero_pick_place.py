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

rim_z = np.percentile(bowl[:, 2], 95)
centre = np.median(bowl, axis=0)
near = bowl[np.abs(bowl[:, 2] - rim_z) < 0.01]
front = near[np.argmin(near[:, 0])]  # the rim point nearest the robot
grasp = np.array([front[0] + 0.01, centre[1], rim_z - 0.015])
quat = np.array([0.0, 1.0, 0.0, 0.0])
plate_centre = np.median(plate, axis=0)

open_gripper()
goto_pose(grasp, quat, z_approach=0.08)
close_gripper()
state = get_observation()
print("gripper after closing", round(float(state["robot_cartesian_pos"][7]), 3))
goto_pose(grasp + np.array([0.0, 0.0, 0.12]), quat)
offset = grasp - centre
target = np.array([plate_centre[0], plate_centre[1], grasp[2] + 0.03]) + np.array([offset[0], offset[1], 0.0])
goto_pose(target, quat, z_approach=0.10)
open_gripper()
goto_home_joint_position()
