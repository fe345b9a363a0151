"""Noise models of the "realistic" perception mode: depth-sensor noise and segmentation-model mask errors.

Perception modes (``EngineSettings.perception_mode``):

* ``"realistic"`` (default): depth images carry the sensor noise of :class:`DepthNoise` (unless
  ``EngineSettings.depth_noise`` is off) and the CPU segmenter answers like an open-vocabulary
  segmentation model (:class:`MaskNoise`): labels are the prompt, masks have boundary errors, occluded
  objects are sometimes missed or only partly segmented, vague prompts bring low-confidence false
  positives.
* ``"oracle"``: the simulator's exact render: exact masks, catalog object names as labels, exact depth.
  For ablations and debugging only; it is not what a camera and a model would give a real robot.

Every random draw comes from :func:`noise_rng`, seeded from the episode seed and what the call is
about (observation number, camera, prompt, object), never from global state: an episode replays
exactly, and the same prompt on the same observation gives the same answer, as a model would.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

PERCEPTION_MODES = ("realistic", "oracle")


def check_perception_mode(mode) -> str:
    """``mode`` if it is one of PERCEPTION_MODES; raises ValueError otherwise."""
    if mode not in PERCEPTION_MODES:
        raise ValueError(f"perception_mode must be one of {', '.join(map(repr, PERCEPTION_MODES))}, got {mode!r}")
    return mode


def noise_rng(*key) -> np.random.Generator:
    """A numpy Generator seeded from ``key`` (ints and strings), stable across processes and runs.

    Python's ``hash`` is salted per process, so the key's repr is hashed with BLAKE2b instead.
    """
    digest = hashlib.blake2b(repr(key).encode("utf-8"), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


# -- depth -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepthNoise:
    """Depth-camera noise: axial Gaussian noise growing with distance, and invalid pixels at edges.

    Axial noise (standard deviation in metres at depth z metres, for surfaces facing the camera):

        sigma_z(z) = 0.0012 + 0.0019 * (max(z, 0.4) - 0.4) ** 2

    from Nguyen, Izadi & Lovell 2012, "Modeling Kinect Sensor Noise for Improved 3D Reconstruction and
    Tracking" (3DIMPVT), their fit for the Kinect v1 over surface angles of 10-60 degrees (about 1.2 mm
    at 0.4-0.5 m, 2.0 mm at 1 m, 5.8 mm at 2 m). The paper's extra term for grazing angles and its
    lateral noise (about 0.8 px) are not modelled. The formula's parabola rises again below 0.4 m,
    which is an artefact of the fit (the Kinect has no depth there), so z is clamped at 0.4 m: close
    views (eye-in-hand) get 1.2 mm, as a short-range sensor would. The formula was checked against
    several open-source implementations that cite the paper, not against the paper's text itself.

    Invalid pixels: structured-light and stereo sensors return no depth ("shadows", flying pixels
    removed) along depth discontinuities. A pixel whose depth exceeds a 4-neighbour's by more than
    ``edge_jump`` (it is on the far side of an edge) reads invalid with probability ``edge_dropout``.
    Both numbers are modelling choices, not published figures. Invalid pixels read 0.0, the value
    real sensors (Kinect, RealSense) report and that geometry.backproject, mask_to_world_points,
    depth_to_point_cloud and plan_grasp skip (pixel_to_world_point raises ValueError on one).
    """

    sigma_base: float = 0.0012  # m
    sigma_quad: float = 0.0019  # m per m^2
    z_ref: float = 0.4  # m
    edge_jump: float = 0.02  # m
    edge_dropout: float = 0.5

    def sigma(self, z) -> np.ndarray:
        """Axial standard deviation in metres at depths ``z`` (metres), elementwise."""
        zc = np.maximum(np.asarray(z, dtype=np.float32), np.float32(self.z_ref))
        return np.float32(self.sigma_base) + np.float32(self.sigma_quad) * (zc - np.float32(self.z_ref)) ** 2

    def apply(self, depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy copy of a (H, W) depth image in metres; (H, W) float32, invalid pixels 0.0.

        Pixels already invalid (<= 0 or not finite) stay invalid (0.0). About 1-2 ms at 256x256.
        """
        z = np.asarray(depth, dtype=np.float32)
        if z.ndim != 2:
            raise ValueError(f"depth must be (H, W), got shape {z.shape}")
        valid = np.isfinite(z) & (z > 0)
        zv = np.where(valid, z, np.float32(0.0))
        far = np.zeros(z.shape, dtype=bool)
        jump = np.float32(self.edge_jump)
        # differences between valid neighbours only (an invalid pixel is no evidence of an edge)
        dx = np.where(valid[:, 1:] & valid[:, :-1], zv[:, 1:] - zv[:, :-1], np.float32(0.0))
        dy = np.where(valid[1:, :] & valid[:-1, :], zv[1:, :] - zv[:-1, :], np.float32(0.0))
        far[:, 1:] |= dx > jump  # farther than its left neighbour
        far[:, :-1] |= -dx > jump  # farther than its right neighbour
        far[1:, :] |= dy > jump  # farther than the pixel above
        far[:-1, :] |= -dy > jump  # farther than the pixel below
        noisy = zv + self.sigma(zv) * rng.standard_normal(z.shape, dtype=np.float32)
        drop = far & (rng.random(z.shape, dtype=np.float32) < np.float32(self.edge_dropout))
        keep = valid & ~drop & (noisy > 0)
        return np.where(keep, noisy, np.float32(0.0)).astype(np.float32, copy=False)


# -- masks -------------------------------------------------------------------------------------------

#: Fraction of SAM's automatic masks with IoU > 0.9 against professionally corrected versions of them
#: (Kirillov et al. 2023, "Segment Anything", section 5 "Mask quality" of SA-1B: 94%).
SAM_IOU_ABOVE_0_9 = 0.94


@dataclass(frozen=True)
class MaskNoise:
    """How the realistic CPU segmenter degrades the simulator's exact masks, like a SAM-class model.

    Published anchor. Kirillov et al. 2023 ("Segment Anything", section 5, mask quality of SA-1B)
    compared SAM's automatic masks with professionally corrected versions of them: 94% of pairs had
    IoU > 0.9 (the paper also reports 97% above 0.75; that second figure was not verified for this
    module and nothing below depends on it). The mask error e = 1 - IoU of a
    detected, unoccluded object is therefore drawn from an exponential distribution whose mean
    ``error_mean`` = 0.1 / ln(1 / 0.06) = 0.0356 gives P(e < 0.1) = 0.94 exactly (mean IoU 0.964),
    capped at ``max_error``. That figure is for SAM on high-resolution photographs; at 256 px
    renders small objects come out worse because the error is realised as whole pixels on the
    boundary (:func:`perturb_mask`). Text prompts rank lower still: SAM 3 (Carion et al. 2025,
    "SAM 3: Segment Anything with Concepts") reaches 54.1 cgF1 on its SA-Co/Gold concept benchmark,
    i.e. a text-prompted model both misses instances and returns wrong ones.

    Modelling choices (not published figures; chosen so the effects are visible but a careful
    program still works):

    * Boundary errors are a smooth random field (correlation length ``field_px`` pixels) plus a
      per-mask bias towards growing or shrinking, added to the mask's signed distance; its amplitude
      is solved for so that the mask's IoU with the exact visible mask (or the fragment kept, below)
      is 1 - e.
    * Occlusion: ``occluded`` is the fraction of the object's visible outline that borders a nearer
      object (the object continues behind it). The error mean grows by a factor
      (1 + ``occlusion_error_gain`` * occluded); an object split into fragments by an occluder keeps
      only its largest fragment with probability ``fragment_drop`` * occluded; it is missed outright
      with probability ``miss_occluded`` * occluded * max(0, 1 - visible pixels / ``large_pixels``)
      (a model loses a partly hidden object when little of it is left, not a half-hidden table).
    * Small objects: fewer than ``small_pixels`` visible pixels are missed with a probability rising
      linearly to ``miss_small`` at one pixel. Anything else is missed with probability ``miss_base``.
    * False positives: when the prompt matches something, with probability ``fp_base`` +
      ``fp_vague`` * (1 - best match score) the answer also holds a part of another visible object
      (a disc of it, then boundary noise) with a score drawn from ``fp_score``. A prompt that matches
      nothing visible returns nothing, like SAM 3's presence head.
    * Scores: the matcher's confidence times the model's IoU estimate (1 - e plus N(0, 0.02) noise),
      so a worse mask scores lower, as SAM's IoU-prediction head intends.
    """

    error_mean: float = 0.1 / math.log(1.0 / (1.0 - SAM_IOU_ABOVE_0_9))
    max_error: float = 0.5
    field_px: float = 3.0
    occlusion_error_gain: float = 2.0
    fragment_drop: float = 0.6
    miss_occluded: float = 0.4
    large_pixels: int = 2000
    small_pixels: int = 40
    miss_small: float = 0.9
    miss_base: float = 0.01
    fp_base: float = 0.03
    fp_vague: float = 0.5
    fp_score: tuple[float, float] = (0.12, 0.45)
    iou_estimate_sigma: float = 0.02

    def sample_error(self, rng: np.random.Generator, occluded: float = 0.0) -> float:
        """A mask error e = 1 - IoU for an object whose outline is ``occluded`` (0-1) hidden."""
        mean = self.error_mean * (1.0 + self.occlusion_error_gain * float(occluded))
        return float(min(self.max_error, rng.exponential(mean)))

    def miss_probability(self, pixels: int, occluded: float) -> float:
        """Probability that an object with ``pixels`` visible pixels and ``occluded`` outline is missed."""
        small = self.miss_small * max(0.0, 1.0 - (pixels - 1) / max(self.small_pixels - 1, 1))
        occ = self.miss_occluded * float(occluded) * max(0.0, 1.0 - pixels / self.large_pixels)
        return float(1.0 - (1.0 - self.miss_base) * (1.0 - small) * (1.0 - occ))

    def fp_probability(self, best_match: float) -> float:
        """Probability of one false-positive detection for a prompt whose best match score is ``best_match``."""
        return float(min(1.0, self.fp_base + self.fp_vague * max(0.0, 1.0 - float(best_match))))

    def score(self, rng: np.random.Generator, confidence: float, error: float) -> float:
        """Detection score: ``confidence`` times a noisy estimate of the mask's IoU, in [0, 1]."""
        estimate = float(np.clip(1.0 - error + rng.normal(0.0, self.iou_estimate_sigma), 0.0, 1.0))
        return round(float(confidence) * estimate, 4)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape (1.0 when both are empty)."""
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def _crop(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (
        slice(max(0, ys[0] - margin), min(h, ys[-1] + margin + 1)),
        slice(max(0, xs[0] - margin), min(w, xs[-1] + margin + 1)),
    )


def _chamfer(mask: np.ndarray) -> np.ndarray:
    """Distance in pixels from each True pixel to the nearest False one (0 on False pixels), float32.

    The mean of the city-block and chessboard distances: at most 12% above the Euclidean distance and
    several times cheaper than scipy's exact transform (a few ms for a table-sized mask at 256 px).
    """
    taxicab = ndimage.distance_transform_cdt(mask, metric="taxicab")
    chessboard = ndimage.distance_transform_cdt(mask, metric="chessboard")
    return (taxicab + chessboard).astype(np.float32) * np.float32(0.5)


def perturb_mask(mask: np.ndarray, error: float, rng: np.random.Generator, field_px: float = 3.0) -> np.ndarray:
    """A copy of the (H, W) bool ``mask`` whose boundary is moved so that IoU(result, mask) ~ 1 - error.

    The boundary moves by a smooth random field (Gaussian-filtered white noise, correlation length
    ``field_px`` pixels, plus a random bias towards growing or shrinking) added to the mask's signed
    distance and scaled by an amplitude found by bisection. Small masks realise the error only to the
    nearest pixel. Never returns an empty mask for a non-empty one. Works in the mask's bounding box
    plus a margin: about 1 ms for a cube-sized mask, 5 ms for a table covering half a 256x256 image.
    """
    mask = np.asarray(mask, dtype=bool)
    if error <= 0 or not mask.any():
        return mask.copy()
    margin = int(math.ceil(4 * field_px)) + 6
    rows, cols = _crop(mask, margin)
    sub = mask[rows, cols]
    signed = _chamfer(sub) - _chamfer(~sub)
    noise = rng.standard_normal(sub.shape, dtype=np.float32)
    field = ndimage.gaussian_filter(noise, sigma=field_px, mode="nearest", truncate=2.5)
    field /= max(float(field.std()), 1e-9)
    field += np.float32(rng.normal(0.0, 0.7))
    target = 1.0 - float(error)
    lo, hi = 0.0, float(margin)
    best, best_gap = sub, 1.0 - target
    for _ in range(14):
        amplitude = (lo + hi) / 2.0
        candidate = signed + amplitude * field > 0
        iou = mask_iou(candidate, sub) if candidate.any() else 0.0
        if candidate.any() and abs(iou - target) < best_gap:
            best, best_gap = candidate, abs(iou - target)
        if iou > target:
            lo = amplitude
        else:
            hi = amplitude
    out = np.zeros_like(mask)
    out[rows, cols] = best
    return out


def occluded_fraction(segmentation: np.ndarray, depth: np.ndarray | None, index: int, margin_m: float = 0.005) -> float:
    """Fraction (0-1) of object ``index``'s visible outline that borders a nearer object.

    segmentation: (H, W) int object indices (-1 background); depth: (H, W) exact depth in metres, or
    None (then 0.0: without depth nothing can be said to be in front). An outline pixel counts when a
    4-neighbour belongs to another object whose depth is smaller by more than ``margin_m`` metres.
    """
    own = segmentation == index
    if depth is None or not own.any():
        return 0.0
    rows, cols = _crop(own, 1)
    seg = segmentation[rows, cols]
    z = np.asarray(depth, dtype=np.float32)[rows, cols]
    own = seg == index
    outline = np.zeros_like(own)
    hidden = np.zeros_like(own)
    for axis, shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
        n_seg = np.roll(seg, shift, axis=axis)
        n_z = np.roll(z, shift, axis=axis)
        edge = np.ones_like(own)  # np.roll wraps around: ignore the wrapped row/column
        if axis == 0:
            edge[0 if shift == 1 else -1, :] = False
        else:
            edge[:, 0 if shift == 1 else -1] = False
        border = own & edge & (n_seg != index)
        outline |= border
        hidden |= border & (n_seg >= 0) & (n_z < z - margin_m)
    total = np.count_nonzero(outline)
    return 0.0 if total == 0 else np.count_nonzero(hidden) / total


def fragments(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (8-connectivity) of a bool mask: (labels (H, W) int, count)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    return labels, int(count)


def largest_fragment(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a bool mask (the mask itself if it has one or none)."""
    labels, count = fragments(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def part_of(mask: np.ndarray, rng: np.random.Generator, max_radius_px: float = 24.0) -> np.ndarray:
    """A disc-shaped part of a non-empty bool mask around one of its pixels (for false positives)."""
    ys, xs = np.nonzero(mask)
    i = int(rng.integers(len(ys)))
    radius = rng.uniform(0.4, 1.0) * min(math.sqrt(len(ys) / math.pi), max_radius_px)
    h, w = mask.shape
    yy, xx = np.ogrid[:h, :w]
    part = mask & ((yy - ys[i]) ** 2 + (xx - xs[i]) ** 2 <= max(radius, 1.5) ** 2)
    return part if part.any() else mask
