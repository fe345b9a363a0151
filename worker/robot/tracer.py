"""One wrapper traces every robot API call, in ``finally``, so failing calls are kept too.

Records hold summaries, not payloads: arrays become shape/dtype/range (small ones keep their values,
so a 3-vector target or a 7-joint solution is readable in the trace), images and masks are never
copied into the record. Keyframes are rendered only when a call asks for one or fails.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any, Callable

import numpy as np

from worker.events import CallRecord, KeyframeRecord

from . import status as st

SMALL_ARRAY = 16
MAX_ITEMS = 24
MAX_STR = 300
#: Default per-episode budget of recorded trace bytes (JSON of every call record); past it the engine
#: stops the program with TRACE_LIMIT. A typical call record is 0.3-2 KiB.
MAX_TRACE_BYTES = 4 * 1024 * 1024
#: Largest JSON of one record field (args, result, artifacts); a bigger summary is replaced by a note.
MAX_FIELD_BYTES = 32 * 1024
#: Keyframe images one episode may write; later calls are traced without images.
MAX_KEYFRAMES = 300


def cap_field(value: Any) -> Any:
    """``value`` if its JSON is at most MAX_FIELD_BYTES, else a note saying how much was dropped."""
    size = len(json.dumps(value, default=str))
    if size <= MAX_FIELD_BYTES:
        return value
    return {"truncated": f"{size} bytes of summary dropped (limit {MAX_FIELD_BYTES} per call field)"}


def summarize(value: Any, depth: int = 0) -> Any:
    """JSON-safe summary of an API argument or result (see module docstring)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_STR else value[:MAX_STR] + f"... [{len(value)} chars]"
    if isinstance(value, np.generic):
        return summarize(value.item(), depth)
    if isinstance(value, np.ndarray):
        return _summarize_array(value)
    if depth >= 4:
        return f"<{type(value).__name__}>"
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k): summarize(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more keys"
        return out
    if isinstance(value, (list, tuple)):
        if (
            value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and len(value) > SMALL_ARRAY
        ):
            return _summarize_array(np.asarray(value))
        out = [summarize(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            out.append(f"... {len(value) - MAX_ITEMS} more")
        return out
    return f"<{type(value).__name__}>"


def _num(x: float):
    if not math.isfinite(x):
        return str(x)
    return float(f"{x:.6g}")


def _summarize_array(arr: np.ndarray) -> dict:
    out: dict[str, Any] = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    if arr.size == 0:
        return out
    if arr.dtype == bool:
        out["true"] = int(arr.sum())
        return out
    if arr.size <= SMALL_ARRAY and arr.dtype.kind in "biuf":
        out["value"] = (
            [_num(float(v)) for v in arr.ravel()]
            if arr.ndim == 1
            else np.vectorize(lambda v: _num(float(v)))(arr).tolist()
        )
        return out
    if arr.dtype.kind in "biuf":
        if arr.ndim >= 2 and arr.shape[-1] == 3 and arr.dtype.kind == "f":
            # Points (N, 3) or (H, W, 3): the range of each axis (x, y, z) on its own, never mixed.
            rows = arr.reshape(-1, 3)
            rows = rows[np.isfinite(rows).all(axis=1)]
            if len(rows):
                out["min"] = [_num(float(v)) for v in rows.min(axis=0)]
                out["max"] = [_num(float(v)) for v in rows.max(axis=0)]
                out["axes"] = "x, y, z"
            return out
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        if finite.size:
            out["min"] = _num(float(finite.min()))
            out["max"] = _num(float(finite.max()))
    return out


class CallContext:
    """What a primitive may add to its own trace record while it runs."""

    __slots__ = ("status", "message", "artifacts", "images", "tracing")

    def __init__(self, tracing: bool):
        self.status = st.OK
        self.message = ""
        self.artifacts: dict = {}
        self.images: list[tuple] = []  # (image, kind, camera, label)
        self.tracing = tracing

    def set_status(self, status: str, message: str = "") -> None:
        self.status = status
        self.message = message or st.message(status)

    def artifact(self, name: str, value) -> None:
        if self.tracing:
            self.artifacts[name] = summarize(value) if not isinstance(value, (dict, list)) else value

    def keyframe(self, image: np.ndarray | Callable[[], np.ndarray], kind: str, camera: str, label: str) -> None:
        """Attach an image; pass a callable to defer drawing so untraced runs pay nothing."""
        if self.tracing:
            self.images.append((image, kind, camera, label))


class Tracer:
    """Wraps each primitive call: timing, argument/result summaries, status, keyframes, the record.

    ``enabled=False`` runs calls with no record and no keyframes (the untraced baseline of
    bench/trace_overhead.py). ``capture_frame()`` renders the keyframe camera before and after calls
    that ask for frames (motion and gripper actions: ``after_frame``) and after failing calls.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        media,
        emit: Callable[[CallRecord], None],
        capture_frame: Callable[[], tuple[np.ndarray, str]],
        sim_time: Callable[[], float],
        max_bytes: int = MAX_TRACE_BYTES,
        recorder=None,
    ):
        self.enabled = enabled
        self.max_bytes = max_bytes
        self.bytes = 0
        self.keyframes = 0
        self.media = media
        self.emit = emit
        self.capture_frame = capture_frame
        self.sim_time = sim_time
        self.seq = 0
        self.records: list[CallRecord] = []
        #: worker.robot.recording.Recorder of the episode's video, or None: told where each call starts
        #: and ends, with a frame before and after every motion and gripper call.
        self.recorder = recorder
        #: (the last camera frame saved, its record): a before-frame that is the very same render as the
        #: previous call's after-frame (the robot did not move in between; the engine's frame cache hands
        #: out one array per control step) points at the same file instead of encoding it again.
        self._last_frame: tuple | None = None

    def invoke(
        self, name: str, fn: Callable, bound_args: dict, line: int, stack: list, after_frame: bool, ctx: CallContext
    ):
        self.seq += 1
        record = CallRecord(seq=self.seq, primitive=name, args={}, line=line, stack=stack, started_at=time.time())
        start = time.perf_counter()
        before = None
        if self.enabled:
            if self.recorder is not None:
                self.recorder.call_started(self.seq, after_frame)
            if after_frame:
                before = self._before_frame()
        try:
            result = fn(ctx, **bound_args)
            record.status = ctx.status
            if self.enabled:
                record.result = cap_field(summarize(result))
            return result
        except (ValueError, TypeError) as exc:
            record.status = st.BAD_ARGUMENT
            record.error = str(exc)
            raise
        except Exception as exc:
            record.status = ctx.status if ctx.status != st.OK else st.EXCEPTION
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.duration_ms = round((time.perf_counter() - start) * 1000.0, 3)
            if self.enabled:
                record.args = cap_field(summarize(bound_args))
                record.message = (ctx.message or ("" if record.status == st.OK else st.message(record.status)))[
                    : MAX_STR * 4
                ]
                record.error = record.error[: MAX_STR * 8]
                record.sim_time = round(self.sim_time(), 4)
                record.artifacts = cap_field(ctx.artifacts)
                if self.recorder is not None:
                    self.recorder.call_ended(record.seq, after_frame)
                record.keyframes = self._keyframes(record, ctx, after_frame, before)
                self.bytes += len(json.dumps(record.as_dict(), default=str))
                self.records.append(record)
                self.emit(record)

    def over_budget(self) -> bool:
        """True once the recorded calls of this episode exceed ``max_bytes`` of JSON."""
        return self.bytes > self.max_bytes

    def _before_frame(self) -> tuple | None:
        """The keyframe camera before a motion or gripper call (kept only if the call records images)."""
        if self.media is None or self.keyframes >= MAX_KEYFRAMES:
            return None
        try:
            frame, camera = self.capture_frame()
        except Exception:  # a keyframe must never turn a traced call into a failed one
            return None
        return (frame, "frame", camera, "before")

    def _keyframes(
        self, record: CallRecord, ctx: CallContext, after_frame: bool, before: tuple | None = None
    ) -> list[KeyframeRecord]:
        if self.media is None or self.keyframes >= MAX_KEYFRAMES:
            return []
        images = list(ctx.images)
        has_frame = any(kind == "frame" for _, kind, _, _ in images)
        if before is not None:
            images.append(before)  # after the call's own images (the first thumbnails), before its after-frame
        if (after_frame or record.status in st.FAILURES) and not has_frame:
            try:
                frame, camera = self.capture_frame()
                images.append((frame, "frame", camera, "after" if after_frame else record.status.lower()))
            except Exception:  # a keyframe must never turn a traced call into a failed one
                pass
        saved = []
        for image, kind, camera, label in images:
            if callable(image):
                image = image()
            if kind == "frame" and self._last_frame is not None and image is self._last_frame[0]:
                saved.append(dataclasses.replace(self._last_frame[1], label=label))
            else:
                saved.append(
                    self.media.save(
                        image, kind=kind, camera=camera, label=label, stem=f"{record.seq}-{record.primitive}-{label}"
                    )
                )
                if kind == "frame":
                    self._last_frame = (image, saved[-1])
            self.keyframes += 1
            if self.keyframes >= MAX_KEYFRAMES:
                break
        return saved
