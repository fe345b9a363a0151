"""Keyframe image files and the overlays drawn on them (Pillow), and where the files go.

The engine writes every file through a :class:`MediaStorage` it is handed: :class:`LocalMediaStorage`
(files under a directory, for the engine on its own and the local search driver) or the web app's
adapter over Django's storage API (runs.storage.DjangoMediaStorage: the local filesystem or an
S3-compatible bucket). Names are relative, "/"-separated paths such as
``runs/7/episodes/31/0001-move_to_pose.jpg``; the name a storage returns from ``save`` is the one
recorded (KeyframeRecord.path) and later read or deleted.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageDraw

from worker.events import KeyframeRecord

JPEG_QUALITY = 85
#: Distinct overlay colours, RGB; the best detection gets the first.
PALETTE = [(255, 64, 64), (64, 160, 255), (255, 200, 0), (80, 220, 120), (200, 100, 255), (255, 140, 60)]


@runtime_checkable
class MediaStorage(Protocol):
    """Where the engine's files go: anything with these three methods.

    ``save(name, data, content_type)`` stores ``data`` (bytes) under the relative ``name`` and returns
    the name it was stored under (a storage may alter it to keep an existing file); ``read(name)``
    returns the bytes and raises FileNotFoundError when there is no such file (or ``name`` is not a
    safe relative path); ``delete_tree(prefix)`` deletes every file whose name starts with
    ``prefix + "/"`` (nothing when there is none)."""

    def save(self, name: str, data: bytes, content_type: str) -> str: ...

    def read(self, name: str) -> bytes: ...

    def delete_tree(self, prefix: str) -> None: ...


def clean_name(name: str) -> str:
    """``name`` as a normalized relative "/"-path; ValueError for an empty, absolute or ".." name."""
    raw = str(name).replace("\\", "/")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if not parts or raw.startswith("/") or ".." in parts:
        raise ValueError(f"{name!r} is not a relative media name")
    return "/".join(parts)


class LocalMediaStorage:
    """A :class:`MediaStorage` over the directory ``root`` (created on the first save). Names never
    leave ``root``: an absolute name, or one with "..", is refused (ValueError on save,
    FileNotFoundError on read)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalMediaStorage({str(self.root)!r})"

    def _path(self, name: str) -> Path:
        root = self.root.resolve()
        path = (root / clean_name(name)).resolve()
        if root not in path.parents:
            raise ValueError(f"{name!r} leaves the media root")
        return path

    def save(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # a reader never sees half a file
        return clean_name(name)

    def read(self, name: str) -> bytes:
        try:
            path = self._path(name)
        except ValueError as exc:
            raise FileNotFoundError(str(exc)) from None
        if not path.is_file():
            raise FileNotFoundError(f"no media file {name!r}")
        return path.read_bytes()

    def delete_tree(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def as_storage(media: MediaStorage | str | os.PathLike | None) -> MediaStorage | None:
    """A storage for what callers pass the engine: a storage as is, a directory path as a
    :class:`LocalMediaStorage`, None (or "") as None (no files are written)."""
    if media is None or media == "":
        return None
    if isinstance(media, str | os.PathLike):
        return LocalMediaStorage(media)
    if isinstance(media, MediaStorage):
        return media
    raise TypeError(f"not a media storage or directory: {media!r}")


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> tuple[bytes, int, int]:
    """An (H, W, 3) uint8 image as JPEG bytes; returns (bytes, width, height)."""
    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), img.width, img.height


class MediaStore:
    """Writes one episode's keyframes as JPEGs named ``prefix/NNNN-stem.jpg`` into ``storage`` (a
    :class:`MediaStorage`, or a directory path for a :class:`LocalMediaStorage`); records hold the
    names the storage gave."""

    def __init__(self, storage: MediaStorage | str | os.PathLike, prefix: str):
        self.storage = as_storage(storage)
        if self.storage is None:
            raise ValueError("MediaStore needs a storage")
        self.prefix = prefix.strip("/")
        self._count = 0

    def save(self, image: np.ndarray, *, kind: str, camera: str, label: str, stem: str) -> KeyframeRecord:
        """Save an (H, W, 3) uint8 image; returns the record describing the file. Errors of the
        storage (OSError, a client error of the object store) propagate."""
        self._count += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60]
        data, width, height = encode_jpeg(image)
        name = self.storage.save(f"{self.prefix}/{self._count:04d}-{safe}.jpg", data, "image/jpeg")
        return KeyframeRecord(name, kind, camera, label, width, height)


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


def draw_points(
    rgb: np.ndarray, pixels: np.ndarray, color=(0, 255, 255), radius: int = 2, title: str = ""
) -> np.ndarray:
    """Dots at (N, 2) pixel coordinates (x, y) over ``rgb``; (H, W, 3) uint8."""
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    for x, y in np.asarray(pixels, dtype=np.float64).reshape(-1, 2):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=color, width=1)
    if title:
        draw.text((3, 2), title[:48], fill=(255, 255, 255))
    return np.asarray(img)


def project(points: np.ndarray, intrinsics: np.ndarray, camera_pose: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) of (N, 3) points given a camera's (3, 3) intrinsics and (4, 4) camera-to-world
    pose (OpenCV axes, same world frame as the points); points behind the camera come back NaN."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    T = np.linalg.inv(np.asarray(camera_pose, dtype=np.float64))
    cam = pts @ T[:3, :3].T + T[:3, 3]
    uv = np.full((len(cam), 2), np.nan)
    front = cam[:, 2] > 1e-6
    K = np.asarray(intrinsics, dtype=np.float64)
    uv[front, 0] = K[0, 0] * cam[front, 0] / cam[front, 2] + K[0, 2]
    uv[front, 1] = K[1, 1] * cam[front, 1] / cam[front, 2] + K[1, 2]
    return uv


def _polyline(draw, uv, color, width):
    pts = [(float(u), float(v)) for u, v in uv if np.isfinite(u) and np.isfinite(v)]
    if len(pts) >= 2:
        draw.line(pts, fill=color, width=width)
    for u, v in pts:
        draw.ellipse([u - 2, v - 2, u + 2, v + 2], outline=color)


def draw_path(rgb, intrinsics, camera_pose, paths: dict, targets: dict, title: str = "") -> np.ndarray:
    """Grasp-point paths ({arm: (N, 3)}) and targets ({arm: (3,) or None}) over a camera image."""
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    for i, (arm, path) in enumerate(sorted(paths.items())):
        color = PALETTE[(i + 1) % len(PALETTE)]
        _polyline(draw, project(path, intrinsics, camera_pose), color, 2)
        target = targets.get(arm)
        if target is not None:
            ((u, v),) = project(target, intrinsics, camera_pose)
            if np.isfinite(u):
                draw.line([u - 6, v, u + 6, v], fill=PALETTE[0], width=2)
                draw.line([u, v - 6, u, v + 6], fill=PALETTE[0], width=2)
    if title:
        draw.text((3, 2), title[:48], fill=(255, 255, 255))
    return np.asarray(img)


def draw_grasps(
    rgb, intrinsics, poses_camera: np.ndarray, scores: np.ndarray, limit: int = 15, zoom: int = 3
) -> np.ndarray:
    """Grasp candidates (K, 4, 4) in the camera frame drawn as finger outlines on a ``zoom``-times
    enlarged crop around them (same size as ``rgb``); the best candidate is red and thickest."""
    h, w = np.asarray(rgb).shape[:2]
    big = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).resize((w * zoom, h * zoom), Image.BILINEAR)
    draw = ImageDraw.Draw(big)
    eye = np.eye(4)
    centres = []
    for i in reversed(range(min(limit, len(poses_camera)))):
        pose = poses_camera[i]
        c, y, z = pose[:3, 3], pose[:3, 1], pose[:3, 2]
        tips = np.stack([c - 0.04 * y, c + 0.04 * y, c - 0.04 * y - 0.05 * z, c + 0.04 * y - 0.05 * z, c])
        a, b, a_back, b_back, mid = project(tips, intrinsics, eye) * zoom
        centres.append(mid)
        color = PALETTE[0] if i == 0 else PALETTE[1]
        width = 4 if i == 0 else 1
        for p, q in ((a, b), (a, a_back), (b, b_back)):
            if np.all(np.isfinite(p)) and np.all(np.isfinite(q)):
                draw.line([tuple(p), tuple(q)], fill=color, width=width)
    centres = np.array([c for c in centres if np.all(np.isfinite(c))])
    cx, cy = centres.mean(axis=0) if len(centres) else (w * zoom / 2, h * zoom / 2)
    left = int(np.clip(cx - w / 2, 0, w * zoom - w))
    top = int(np.clip(cy - h / 2, 0, h * zoom - h))
    crop = big.crop((left, top, left + w, top + h))
    ImageDraw.Draw(crop).text(
        (3, 2),
        f"{len(poses_camera)} grasps, best {scores[0]:.2f} (x{zoom})" if len(scores) else "no grasps",
        fill=(255, 255, 255),
    )
    return np.asarray(crop)
