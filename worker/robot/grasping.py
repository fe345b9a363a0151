"""Parallel-jaw grasp candidates from one camera's view of an object (no learned model, CPU only).

Candidates are generated over approach directions (into each dominant visible face, along the
object's principal axes, and along the camera's viewing ray) and closing directions (sampled around
each approach). For each pair the fingers are placed on the extreme visible points along the closing
direction inside the slab the finger pads sweep; a candidate is kept when the opening fits the
gripper and no visible point lies inside the fingers or the palm. Scores (0..1) combine contact
quality, the opening margin, how central the grasp is on the object, and whether the hand comes from
the camera's side (the only side the camera can vouch for being free). Contact quality is the better
of two tests: antipodality of the surface normals at the two contacts (the friction-cone condition of
Nguyen 1988), which needs both contact faces in view, and parallelism of the contact surfaces (the
extreme widths stay constant across the pad area), which holds for the hidden far face of a box
whose near edges are seen.

Frame of a returned pose: the grasp point midway between the fingertips; z = approach direction
(from the hand towards the object), y = closing direction, x = y cross z. Same convention as
solve_ik, so ``pose_mat @ grasp`` can be passed to it directly.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from . import geometry as geo

MAX_OPENING = 0.078  # Panda fingers open to about 0.079 m (measured)
FINGER_DEPTH = 0.045  # fingertip pad to palm, m
FINGER_THICKNESS = 0.012
FINGER_WIDTH = 0.02
CLEARANCE = 0.006  # free space wanted beside the object on each side when the fingers close in
MAX_GRASP_DEPTH = 0.03  # how far past the approached surface the grasp point may go
MAX_POINTS = 1500
NORMAL_NEIGHBOURS = 12


def estimate_normals(points: np.ndarray, tree: cKDTree) -> np.ndarray:
    """Unit normals by local PCA, oriented towards the camera at the origin."""
    k = min(NORMAL_NEIGHBOURS, len(points))
    _, idx = tree.query(points, k=k)
    neighbourhoods = points[idx] - points[idx].mean(axis=1, keepdims=True)
    cov = np.einsum("nki,nkj->nij", neighbourhoods, neighbourhoods)
    _, vecs = np.linalg.eigh(cov)
    normals = vecs[:, :, 0]
    flip = np.einsum("ni,ni->n", normals, points) > 0
    normals[flip] *= -1
    return normals


def face_normals(
    normals: np.ndarray, max_faces: int = 3, angle_deg: float = 20.0, min_share: float = 0.08
) -> list[np.ndarray]:
    """Mean normals of the largest groups of similar normals (the object's dominant visible faces)."""
    cos = np.cos(np.radians(angle_deg))
    remaining = np.ones(len(normals), dtype=bool)
    faces = []
    while len(faces) < max_faces and remaining.sum() >= min_share * len(normals):
        pool = normals[remaining]
        votes = (pool @ pool.T > cos).sum(axis=1)
        seed = pool[np.argmax(votes)]
        members = remaining & (normals @ seed > cos)
        if members.sum() < min_share * len(normals):
            break
        mean = normals[members].mean(axis=0)
        faces.append(mean / np.linalg.norm(mean))
        remaining &= ~members
    return faces


def _parallelism(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> float:
    """1 when the extreme closing-direction coordinates are constant over the pad area, else less."""
    highs, lows = [], []
    for xb in np.array_split(np.argsort(px), 3):
        for zb in np.array_split(xb[np.argsort(pz[xb])], 3):
            if len(zb) >= 2:
                highs.append(py[zb].max())
                lows.append(py[zb].min())
    if len(highs) < 3:
        return 0.0
    spread = np.std(highs) + np.std(lows)
    return float(np.clip(1.0 - spread / 0.006, 0.0, 1.0))


def _perpendicular_basis(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = np.cross(z, helper)
    a /= np.linalg.norm(a)
    return a, np.cross(z, a)


def plan_grasps(points: np.ndarray, max_candidates: int = 40, angles: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Grasp candidates for an object's (N, 3) camera-frame points; returns (K, 4, 4) poses and (K,)
    scores, best first (K may be 0). Raises ValueError for fewer than 20 points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(pts) < 20:
        raise ValueError(f"need at least 20 object points to plan grasps, got {len(pts)}")
    if len(pts) > MAX_POINTS:
        pts = pts[np.linspace(0, len(pts) - 1, MAX_POINTS).astype(int)]
    tree = cKDTree(pts)
    normals = estimate_normals(pts, tree)
    box = geo.oriented_bounding_box(pts)
    centre = box["center"]
    view = centre / np.linalg.norm(centre)
    approaches = [-n for n in face_normals(normals)]
    approaches += [sign * box["R"][:, i] for i in range(3) for sign in (1.0, -1.0)] + [view]
    size = float(np.linalg.norm(box["extent"]))

    candidates = []
    for z in approaches:
        if z @ view < -0.3:  # from behind the object, where the camera cannot see free space
            continue
        a, b = _perpendicular_basis(z)
        along = pts @ z
        surface = np.percentile(along, 2)
        depth = min(MAX_GRASP_DEPTH, (np.percentile(along, 98) - surface) / 2.0)
        for k in range(angles):
            theta = np.pi * k / angles
            y = np.cos(theta) * a + np.sin(theta) * b
            x = np.cross(y, z)
            grasp = centre + z * ((surface + depth) - centre @ z)
            rel = pts - grasp
            px, py, pz = rel @ x, rel @ y, rel @ z
            # Points the closing fingers will meet: in the slab swept by the finger pads.
            slab = (np.abs(px) < FINGER_WIDTH / 2) & (pz > -FINGER_DEPTH) & (pz < FINGER_DEPTH * 0.3)
            if slab.sum() < 6:
                continue
            lo_i = np.flatnonzero(slab)[np.argmin(py[slab])]
            hi_i = np.flatnonzero(slab)[np.argmax(py[slab])]
            width = py[hi_i] - py[lo_i]
            if width + 2 * CLEARANCE > MAX_OPENING or width < 0.004:
                continue
            mid = (py[hi_i] + py[lo_i]) / 2.0
            grasp = grasp + y * mid
            py = py - mid
            half = width / 2.0 + CLEARANCE
            # Fingers (open) and palm must not sweep through visible points.
            in_finger = (
                (np.abs(px) < FINGER_WIDTH / 2)
                & (np.abs(py) > half)
                & (np.abs(py) < half + FINGER_THICKNESS)
                & (pz > -FINGER_DEPTH)
                & (pz < 0.005)
            )
            in_palm = (
                (np.abs(px) < 0.03)
                & (np.abs(py) < half + FINGER_THICKNESS)
                & (pz < -FINGER_DEPTH)
                & (pz > -FINGER_DEPTH - 0.06)
            )
            if in_finger.any() or in_palm.any():
                continue
            antipodal = max(
                0.5 * (abs(normals[lo_i] @ y) + abs(normals[hi_i] @ y)), _parallelism(px[slab], py[slab], pz[slab])
            )
            margin = 1.0 - width / MAX_OPENING
            central = 1.0 - min(1.0, np.linalg.norm(grasp - centre) / max(size, 1e-6))
            facing = 0.5 * (1.0 + z @ view)
            score = 0.45 * antipodal + 0.2 * margin + 0.2 * central + 0.15 * facing
            pose = np.eye(4)
            pose[:3, :3] = np.stack([x, y, z], axis=1)
            pose[:3, 3] = grasp
            candidates.append((score, pose))
    candidates.sort(key=lambda c: -c[0])
    kept: list[tuple[float, np.ndarray]] = []
    for score, pose in candidates:  # drop near-duplicates (same place, same closing line)
        if all(np.linalg.norm(pose[:3, 3] - p[:3, 3]) > 0.005 or abs(pose[:3, 1] @ p[:3, 1]) < 0.97 for _, p in kept):
            kept.append((score, pose))
        if len(kept) >= max_candidates:
            break
    if not kept:
        return np.zeros((0, 4, 4)), np.zeros(0)
    return np.stack([p for _, p in kept]), np.array([round(float(s), 4) for s, _ in kept])


def top_down_index(poses_world: np.ndarray, scores: np.ndarray, max_tilt: float) -> int | None:
    """Index of the best-scoring grasp whose approach (z) is within ``max_tilt`` rad of world down."""
    best = None
    for i in range(len(poses_world)):
        tilt = np.arccos(np.clip(-poses_world[i][2, 2], -1.0, 1.0))
        if tilt <= max_tilt and (best is None or scores[i] > scores[best]):
            best = i
    return best
