"""Keyframe image files and the overlays drawn on them (Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from worker.events import KeyframeRecord

JPEG_QUALITY = 85
#: Distinct overlay colours, RGB; the best detection gets the first.
PALETTE = [(255, 64, 64), (64, 160, 255), (255, 200, 0), (80, 220, 120), (200, 100, 255), (255, 140, 60)]


class MediaStore:
    """Writes keyframes as JPEG files under ``root/prefix``; records hold paths relative to ``root``."""

    def __init__(self, root: str | os.PathLike, prefix: str):
        self.root = Path(root)
        self.prefix = prefix.strip("/")
        self._dir_ready = False
        self._count = 0

    def save(self, image: np.ndarray, *, kind: str, camera: str, label: str, stem: str) -> KeyframeRecord:
        """Save an (H, W, 3) uint8 image; returns the record describing the file."""
        if not self._dir_ready:
            (self.root / self.prefix).mkdir(parents=True, exist_ok=True)
            self._dir_ready = True
        self._count += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60]
        rel = f"{self.prefix}/{self._count:04d}-{safe}.jpg"
        img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
        img.save(self.root / rel, format="JPEG", quality=JPEG_QUALITY)
        return KeyframeRecord(rel, kind, camera, label, img.width, img.height)


def draw_detections(rgb: np.ndarray, detections: list[dict], title: str = "") -> np.ndarray:
    """Masks tinted over ``rgb`` with boxes and "label score" captions; (H, W, 3) uint8."""
    base = np.asarray(rgb, dtype=np.float32).copy()
    for i, det in enumerate(detections):
        color = np.array(PALETTE[i % len(PALETTE)], dtype=np.float32)
        mask = np.asarray(det["mask"], dtype=bool)
        alpha = 0.55 if i == 0 else 0.35
        base[mask] = base[mask] * (1 - alpha) + color * alpha
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for i, det in enumerate(detections):
        color = PALETTE[i % len(PALETTE)]
        x1, y1, x2, y2 = det["box"]
        draw.rectangle([x1, y1, x2, y2], outline=color, width=2 if i == 0 else 1)
        draw.text((x1 + 2, max(0, y1 - 11)), f"{det['label']} {det['score']:.2f}", fill=color)
    if title:
        draw.text((3, 2), title[:48], fill=(255, 255, 255))
    return np.asarray(img)


def draw_points(rgb: np.ndarray, pixels: np.ndarray, color=(0, 255, 255), radius: int = 2, title: str = "") -> np.ndarray:
    """Dots at (N, 2) pixel coordinates (x, y) over ``rgb``; (H, W, 3) uint8."""
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    for x, y in np.asarray(pixels, dtype=np.float64).reshape(-1, 2):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=color, width=1)
    if title:
        draw.text((3, 2), title[:48], fill=(255, 255, 255))
    return np.asarray(img)
