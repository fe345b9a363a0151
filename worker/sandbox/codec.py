"""Wire format between the sandboxed program and the robot API host.

Frames are a 4-byte big-endian length followed by a msgpack document. numpy arrays travel as a msgpack
extension holding (dtype string, shape, raw bytes). Nothing is ever unpickled: the host must be able to
read whatever a hostile program writes without running code, so decoding accepts only plain data and
numeric arrays of the dtypes in ``ALLOWED_DTYPE_KINDS``.

This module is imported both by the host (as ``worker.sandbox.codec``) and by the sandbox child as a
top-level module, so it must import nothing but the standard library, numpy and msgpack.
"""

from __future__ import annotations

import os
import select
import struct
import time

import msgpack
import numpy as np

NDARRAY_EXT = 1
#: bool, signed and unsigned integers, floats and complex numbers; no object, string or void dtypes.
ALLOWED_DTYPE_KINDS = frozenset("biufc")
#: Largest frame either side accepts. An observation of three 256 px cameras is about 1.4 MiB.
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_ARRAY_DIMS = 8
_HEADER = struct.Struct(">I")


class CodecError(ValueError):
    """A value cannot be encoded, or a frame is malformed or too large."""


class PeerClosed(EOFError):
    """The other end closed its pipe (for the host: the sandbox process exited or died)."""


class FrameTimeout(TimeoutError):
    """No complete frame arrived before the deadline."""


def _default(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in ALLOWED_DTYPE_KINDS:
            raise CodecError(f"arrays of dtype {obj.dtype} cannot cross the sandbox boundary; use a numeric dtype")
        arr = np.ascontiguousarray(obj)
        return msgpack.ExtType(NDARRAY_EXT, msgpack.packb([arr.dtype.str, list(arr.shape), arr.tobytes()]))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise CodecError(f"a value of type {type(obj).__name__} cannot be passed to or from the robot API")


def _ext_hook(code, data):
    if code != NDARRAY_EXT:
        raise CodecError(f"unknown extension type {code}")
    try:
        dtype_str, shape, raw = msgpack.unpackb(data, raw=False)
        dtype = np.dtype(dtype_str)
    except Exception as exc:  # malformed payload from an untrusted peer
        raise CodecError(f"malformed array payload: {exc}") from None
    if dtype.kind not in ALLOWED_DTYPE_KINDS or dtype.hasobject:
        raise CodecError(f"refused array dtype {dtype_str!r}")
    if not isinstance(shape, list) or len(shape) > MAX_ARRAY_DIMS or not all(
        isinstance(n, int) and n >= 0 for n in shape
    ):
        raise CodecError("malformed array shape")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != expected:
        raise CodecError("array payload size does not match its shape")
    # bytearray makes the array writable: programs legitimately edit images and masks in place.
    return np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)


def encode(value) -> bytes:
    """Serialise ``value`` (plain data and numeric numpy arrays) into one frame body."""
    try:
        body = msgpack.packb(value, default=_default, use_bin_type=True)
    except CodecError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(str(exc)) from None
    if len(body) > MAX_FRAME_BYTES:
        raise CodecError(f"message of {len(body)} bytes exceeds the {MAX_FRAME_BYTES} byte limit")
    return body


def decode(body: bytes):
    """Inverse of :func:`encode`; raises :class:`CodecError` on anything but plain data and arrays."""
    try:
        return msgpack.unpackb(body, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"malformed message: {exc}") from None


def write_frame(fd: int, value) -> None:
    body = encode(value)
    data = memoryview(_HEADER.pack(len(body)) + body)
    while data:
        try:
            n = os.write(fd, data)
        except BrokenPipeError:
            raise PeerClosed("peer closed the pipe") from None
        data = data[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FrameTimeout()
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise FrameTimeout()
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise PeerClosed("peer closed the pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, deadline: float | None = None):
    """Read one frame; ``deadline`` is a ``time.monotonic()`` value, ``None`` blocks.

    Raises FrameTimeout, PeerClosed or CodecError (oversized or malformed frame).
    """
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > MAX_FRAME_BYTES:
        raise CodecError(f"frame of {size} bytes exceeds the {MAX_FRAME_BYTES} byte limit")
    return decode(_read_exact(fd, size, deadline))
