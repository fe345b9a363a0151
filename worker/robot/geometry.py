"""Pure-numpy geometry used by the robot API: poses, quaternions (wxyz), back-projection, boxes.

Conventions: 4x4 homogeneous transforms; ``T_a_b`` maps points in frame b into frame a. Cameras use
OpenCV axes (x right, y down, z forward) and pinhole intrinsics K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def as_array(value, shape: tuple, name: str, dtype=np.float64) -> np.ndarray:
    """Coerce ``value`` to an array of ``shape`` or raise ValueError naming the argument."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric with shape {shape}, got {type(value).__name__}") from None
    if arr.size == int(np.prod(shape)) and arr.shape != shape:
        arr = arr.reshape(shape)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def quat_to_matrix(quat_wxyz) -> np.ndarray:
    """(4,) wxyz unit quaternion -> (3, 3) rotation matrix. Normalises; raises ValueError on zero."""
    q = np.asarray(quat_wxyz, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(q)
    if norm < 1e-9:
        raise ValueError("quaternion has zero length")
    return Rotation.from_quat(q / norm, scalar_first=True).as_matrix()


def matrix_to_quat(rot) -> np.ndarray:
    """(3, 3) rotation matrix -> (4,) wxyz quaternion with w >= 0."""
    q = Rotation.from_matrix(np.asarray(rot, dtype=np.float64)).as_quat(scalar_first=True)
    return q if q[0] >= 0 else -q


def make_transform(position, rotation=None) -> np.ndarray:
    """(4, 4) from a (3,) position and a (3, 3) rotation matrix or (4,) wxyz quaternion."""
    T = np.eye(4)
    T[:3, 3] = np.asarray(position, dtype=np.float64).reshape(3)
    if rotation is not None:
        rot = np.asarray(rotation, dtype=np.float64)
        T[:3, :3] = quat_to_matrix(rot) if rot.shape == (4,) else rot.reshape(3, 3)
    return T


def invert_transform(T) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    inv = np.eye(4)
    inv[:3, :3] = T[:3, :3].T
    inv[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return inv


def transform_points(T, points) -> np.ndarray:
    """Apply a (4, 4) transform to (N, 3) points; returns (N, 3)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    T = np.asarray(T, dtype=np.float64)
    return pts @ T[:3, :3].T + T[:3, 3]


def backproject(depth, intrinsics, mask=None) -> np.ndarray:
    """Camera-frame (N, 3) points of the pixels in ``mask`` (all pixels if None) with valid depth.

    depth: (H, W) metres along the optical axis; invalid (<= 0 or non-finite) pixels are skipped.
    """
    depth = np.asarray(depth, dtype=np.float64)
    K = np.asarray(intrinsics, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    v, u = np.nonzero(valid)
    z = depth[v, u]
    x = (u - K[0, 2]) * z / K[0, 0]
    y = (v - K[1, 2]) * z / K[1, 1]
    return np.stack([x, y, z], axis=1)


def oriented_bounding_box(points) -> dict:
    """Oriented bounding box of (N, 3) points by principal axes.

    Returns {"center": (3,), "extent": (3,) full side lengths, "R": (3, 3) whose columns are the box
    axes ordered by decreasing extent, right-handed}. Same frame as the points. Raises ValueError for
    fewer than 3 points.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(pts) < 3:
        raise ValueError(f"need at least 3 points for a bounding box, got {len(pts)}")
    mean = pts.mean(axis=0)
    cov = np.cov((pts - mean).T)
    _, vecs = np.linalg.eigh(cov)
    R = vecs[:, ::-1].copy()
    if np.linalg.det(R) < 0:
        R[:, 2] *= -1
    local = (pts - mean) @ R
    lo, hi = local.min(axis=0), local.max(axis=0)
    extent = hi - lo
    order = np.argsort(-extent)
    R, lo, hi, extent = R[:, order], lo[order], hi[order], extent[order]
    if np.linalg.det(R) < 0:
        R[:, 2] *= -1
        lo[2], hi[2] = -hi[2], -lo[2]
    center = mean + R @ ((lo + hi) / 2)
    return {"center": center, "extent": extent, "R": R}


def rotation_angle(R_a, R_b) -> float:
    """Angle in radians of the rotation taking R_a to R_b."""
    cos = (np.trace(np.asarray(R_a).T @ np.asarray(R_b)) - 1) / 2
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))
