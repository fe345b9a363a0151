"""CPU text-prompted segmentation built on the simulator's segmentation render.

The simulator renders which object each pixel shows; this module plays the part of an open-vocabulary
segmentation model on top of it: it scores how well the prompt names each visible object, returns one
mask per plausible object with a score, best first, and never anything but pixels, boxes, scores and
the object's category label. Like a real model it only sees what the camera sees (an occluded object
gives a small mask, an object out of view gives nothing) and a vague prompt can match the wrong object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from worker.sim.catalog import SceneObject

STOPWORDS = frozenset("a an the of on in at to from with and or this that its it object thing please".split())
#: Below this matcher score an object is not reported.
MATCH_THRESHOLD = 0.3
#: Masks smaller than this many pixels are scored down (a real model is unsure about slivers).
CONFIDENT_PIXELS = 150


def _tokens(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return [w for w in words if w not in STOPWORDS]


class LexicalMatcher:
    """Scores prompt/object pairs by token overlap with the object's label and synonyms, in [0, 1].

    An exact phrase match scores 1; otherwise the best Jaccard overlap of content words. "cube" and
    "red cube" both find the Lift cube; "block on the table" overlaps both the cube ("block") and the
    table, the kind of ambiguity a vague prompt gets from a real model.
    """

    def score(self, prompt: str, obj: SceneObject) -> float:
        p = _tokens(prompt)
        if not p:
            return 0.0
        pset = set(p)
        best = 0.0
        for phrase in (obj.label, *obj.synonyms):
            s = _tokens(phrase)
            if not s:
                continue
            if s == p:
                return 1.0
            sset = set(s)
            best = max(best, len(pset & sset) / len(pset | sset))
        return best


@dataclass
class Detection:
    mask: np.ndarray  # (H, W) bool
    box: list[float]  # [x1, y1, x2, y2] pixels, inclusive extents
    score: float
    label: str

    def as_dict(self) -> dict:
        return {"mask": self.mask, "box": self.box, "score": self.score, "label": self.label}


class CpuSegmenter:
    def __init__(self, matcher=None, threshold: float = MATCH_THRESHOLD):
        self.matcher = matcher or LexicalMatcher()
        self.threshold = threshold

    def segment_text(self, segmentation: np.ndarray, objects: list[SceneObject], prompt: str) -> list[Detection]:
        """Detections for ``prompt`` in a frame whose (H, W) ``segmentation`` indexes ``objects``."""
        counts = np.bincount(segmentation[segmentation >= 0].ravel(), minlength=len(objects))
        detections = []
        for index, obj in enumerate(objects):
            pixels = int(counts[index]) if index < len(counts) else 0
            if pixels == 0:
                continue
            match = self.matcher.score(prompt, obj)
            if match < self.threshold:
                continue
            mask = segmentation == index
            detections.append(Detection(mask, _box(mask), _confidence(match, pixels), obj.label))
        detections.sort(key=lambda d: -d.score)
        return detections

    def segment_points(self, segmentation: np.ndarray, objects: list[SceneObject], points) -> list[Detection]:
        """One detection per distinct object under the given (x, y) pixel points, in point order."""
        h, w = segmentation.shape
        seen, detections = set(), []
        for x, y in points:
            xi, yi = int(round(x)), int(round(y))
            if not (0 <= xi < w and 0 <= yi < h):
                raise ValueError(f"point ({x}, {y}) is outside the {w}x{h} image")
            index = int(segmentation[yi, xi])
            if index < 0 or index in seen:
                continue
            seen.add(index)
            mask = segmentation == index
            detections.append(Detection(mask, _box(mask), _confidence(1.0, int(mask.sum())), objects[index].label))
        return detections


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _confidence(match: float, pixels: int) -> float:
    visibility = min(1.0, pixels / CONFIDENT_PIXELS)
    return round(float(match * (0.6 + 0.4 * visibility)), 4)
