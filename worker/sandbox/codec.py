"""Wire format between the sandboxed program and the robot API host.

Frames are a 4-byte big-endian length followed by a msgpack document. numpy arrays travel as a msgpack
extension holding (dtype string, shape, raw bytes). Nothing is ever unpickled: the host must be able to
read whatever a hostile program writes without running code, so decoding accepts only plain data and
numeric arrays of the dtypes in ``ALLOWED_DTYPE_KINDS``.

Decoding is bounded by a :class:`DecodeLimits` (``CHILD_TO_HOST`` for everything the program's process
writes, ``HOST_TO_CHILD`` for the host's own messages). Before msgpack builds a single object, the frame
is walked header by header (:func:`_check_structure`): every string, binary, extension, array and map
length, the nesting depth and the total number of container elements are checked against the limits.
Checking with msgpack's ``list_hook``/``object_hook`` alone would be too late: msgpack allocates an
array's slots when it reads the array's header, and calls the hooks only once a container is complete,
so nested headers would allocate long before any hook could count them.

This module is imported both by the host (as ``worker.sandbox.codec``) and by the sandbox child as a
top-level module, so it must import nothing but the standard library, numpy and msgpack.
"""

from __future__ import annotations

import math
import os
import select
import struct
import time
from dataclasses import dataclass

import msgpack
import numpy as np

NDARRAY_EXT = 1
#: bool, signed and unsigned integers, floats and complex numbers; no object, string or void dtypes.
ALLOWED_DTYPE_KINDS = frozenset("biufc")
#: Largest frame the host sends. An observation of three 256 px cameras is about 1.4 MiB.
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_ARRAY_DIMS = 8
_MAX_DTYPE_CHARS = 64
_HEADER = struct.Struct(">I")
_MIB = 1024 * 1024


class CodecError(ValueError):
    """A value cannot be encoded, or a frame is malformed or too large."""


class PeerClosed(EOFError):
    """The other end closed its pipe (for the host: the sandbox process exited or died)."""


class FrameTimeout(TimeoutError):
    """No complete frame arrived before the deadline."""


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on one frame, all checked before any object is built.

    Lengths are in bytes for strings, binaries and extensions and in items for arrays and maps.
    ``max_elements`` counts every value directly inside an array or map over the whole frame, map keys
    included, so it bounds the number of Python objects a frame decodes into. ``max_depth`` is the
    deepest container nesting (a top-level list is depth 1). A numpy array is one element however large
    it is; its bytes count against ``max_frame_bytes`` and ``max_ext_len``.
    """

    max_frame_bytes: int
    max_str_len: int
    max_bin_len: int
    max_array_len: int
    max_map_len: int
    max_ext_len: int
    max_elements: int
    max_depth: int


#: What the host sends: the start message (program source and API docs) and call results, including
#: observations of several 256-512 px RGB and depth cameras as arrays. The host is trusted; these
#: limits only keep a bug from taking the child down with an unbounded allocation.
HOST_TO_CHILD = DecodeLimits(
    max_frame_bytes=MAX_FRAME_BYTES,
    max_str_len=16 * _MIB,
    max_bin_len=MAX_FRAME_BYTES,
    max_array_len=1 << 20,
    max_map_len=1 << 16,
    max_ext_len=MAX_FRAME_BYTES,
    max_elements=1 << 22,
    max_depth=64,
)

#: What the program's process sends: call arguments and the final ``done`` report, all hostile.
#: Large data travels as numpy arrays, one element each, so a 512x512x3 uint8 image (768 KiB) or a
#: 50,000x3 float64 cloud (1.2 MB) fits 8 MiB several times over. Plain containers are for small things
#: (poses, names, options, a few thousand points), hence 250,000 elements in all. The costliest element
#: is a zero-size array (about 180 bytes of Python objects and 4 us to decode; an empty dict is 64 bytes),
#: so any frame decodes into at most about 8 MiB of copied bytes plus 45 MB of objects, in about a
#: second. Strings are names, labels and the program's output (the host keeps 20,000 characters of it),
#: so 1 MiB is already generous; binaries are not a robot API type. Depth 32 lets a call's arguments nest
#: far deeper than any real pose or point list.
CHILD_TO_HOST = DecodeLimits(
    max_frame_bytes=8 * _MIB,
    max_str_len=_MIB,
    max_bin_len=_MIB,
    max_array_len=100_000,
    max_map_len=10_000,
    max_ext_len=8 * _MIB,
    max_elements=250_000,
    max_depth=32,
)


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
        # Only [dtype string, shape of at most MAX_ARRAY_DIMS ints, bytes] is valid, so parse no more.
        dtype_str, shape, raw = msgpack.unpackb(
            data,
            raw=False,
            max_str_len=_MAX_DTYPE_CHARS,
            max_bin_len=len(data),
            max_array_len=MAX_ARRAY_DIMS,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # malformed payload from an untrusted peer
        raise CodecError(f"malformed array payload: {exc}") from None
    if not isinstance(dtype_str, str):
        raise CodecError("malformed array dtype")
    try:
        dtype = np.dtype(dtype_str)
    except Exception:
        raise CodecError(f"malformed array dtype {dtype_str!r}") from None
    if dtype.kind not in ALLOWED_DTYPE_KINDS or dtype.hasobject:
        raise CodecError(f"refused array dtype {dtype_str!r}")
    if not isinstance(shape, list) or len(shape) > MAX_ARRAY_DIMS or not all(type(n) is int and n >= 0 for n in shape):
        raise CodecError("malformed array shape")
    if not isinstance(raw, bytes) or len(raw) != math.prod(shape) * dtype.itemsize:
        raise CodecError("array payload size does not match its shape")
    try:
        # bytearray makes the array writable: programs legitimately edit images and masks in place. One
        # ndarray over it (not frombuffer + reshape, which makes two) keeps many small arrays cheap.
        return np.ndarray(shape, dtype, bytearray(raw))
    except (ValueError, OverflowError) as exc:  # a zero-size shape numpy cannot represent, e.g. [0, 2**63]
        raise CodecError(f"malformed array shape: {exc}") from None


# What the first byte of a msgpack object says about it: (kind, width, n). ``width`` is the size in
# bytes of the big-endian length or count that follows the type byte; when it is 0, ``n`` is that length
# or count already: taken from the type byte (fix* forms) or fixed (scalars and fixext payloads).
_SCALAR, _STR, _BIN, _EXT, _ARRAY, _MAP, _INVALID = range(7)


def _type_table():
    table = [(_INVALID, 0, 0)] * 256
    for b in [*range(0x00, 0x80), *range(0xE0, 0x100), 0xC0, 0xC2, 0xC3]:
        table[b] = (_SCALAR, 0, 0)
    for b in range(0x80, 0x90):
        table[b] = (_MAP, 0, b & 0x0F)
    for b in range(0x90, 0xA0):
        table[b] = (_ARRAY, 0, b & 0x0F)
    for b in range(0xA0, 0xC0):
        table[b] = (_STR, 0, b & 0x1F)
    for b, size in (
        (0xCA, 4),
        (0xCB, 8),
        (0xCC, 1),
        (0xCD, 2),
        (0xCE, 4),
        (0xCF, 8),
        (0xD0, 1),
        (0xD1, 2),
        (0xD2, 4),
        (0xD3, 8),
    ):
        table[b] = (_SCALAR, 0, size)
    for first, kind in ((0xC4, _BIN), (0xC7, _EXT), (0xD9, _STR)):
        for i, width in enumerate((1, 2, 4)):
            table[first + i] = (kind, width, 0)
    for i, b in enumerate(range(0xD4, 0xD9)):
        table[b] = (_EXT, 0, 1 << i)
    table[0xDC], table[0xDD] = (_ARRAY, 2, 0), (_ARRAY, 4, 0)
    table[0xDE], table[0xDF] = (_MAP, 2, 0), (_MAP, 4, 0)
    return tuple(table)


_TYPES = _type_table()


def _check_structure(body, limits: DecodeLimits) -> None:
    """Walk the msgpack headers of ``body`` without building objects; raise CodecError past ``limits``.

    Iterative (a stack of items left per open container), so no input can cause a RecursionError, and
    linear in the number of values, which ``limits.max_elements`` bounds.
    """
    end = len(body)
    pos = 0
    elements = 0
    left = [1]  # values still to read in each open container; the bottom entry is the top-level value
    while left:
        if not left[-1]:
            left.pop()
            continue
        left[-1] -= 1
        if pos >= end:
            raise CodecError("truncated message")
        kind, width, n = _TYPES[body[pos]]
        pos += 1
        if width:
            if pos + width > end:
                raise CodecError("truncated message")
            n = int.from_bytes(body[pos : pos + width], "big")
            pos += width
        if kind == _SCALAR:
            pos += n
        elif kind == _STR:
            if n > limits.max_str_len:
                raise CodecError(f"string of {n} bytes exceeds the {limits.max_str_len} byte limit")
            pos += n
        elif kind == _BIN:
            if n > limits.max_bin_len:
                raise CodecError(f"binary of {n} bytes exceeds the {limits.max_bin_len} byte limit")
            pos += n
        elif kind == _EXT:
            if n > limits.max_ext_len:
                raise CodecError(f"array of {n} bytes exceeds the {limits.max_ext_len} byte limit")
            # The extension type code, then the payload. Checked here too because msgpack decodes its own
            # timestamp extension (-1) without asking _ext_hook.
            if pos < end and body[pos] != NDARRAY_EXT:
                raise CodecError(f"unknown extension type byte 0x{body[pos]:02x}")
            pos += 1 + n
        elif kind == _INVALID:
            raise CodecError(f"malformed message: invalid type byte 0x{body[pos - 1]:02x}")
        else:
            if kind == _ARRAY and n > limits.max_array_len:
                raise CodecError(f"list of {n} items exceeds the {limits.max_array_len} item limit")
            if kind == _MAP and n > limits.max_map_len:
                raise CodecError(f"map of {n} entries exceeds the {limits.max_map_len} entry limit")
            if len(left) > limits.max_depth:
                raise CodecError(f"message nests containers deeper than {limits.max_depth} levels")
            values = 2 * n if kind == _MAP else n
            elements += values
            if elements > limits.max_elements:
                raise CodecError(f"message holds more than {limits.max_elements} values in lists and maps")
            if values > end - pos:  # every value takes at least one byte
                raise CodecError("truncated message")
            left.append(values)
    if pos != end:
        raise CodecError("truncated message" if pos > end else "malformed message: extra bytes after the value")


def encode(value, limits: DecodeLimits = HOST_TO_CHILD) -> bytes:
    """Serialise ``value`` (plain data and numeric numpy arrays) into one frame body.

    Raises :class:`CodecError` for other types and for a body the receiver would refuse under ``limits``,
    so the sender learns about it (a program gets an exception) instead of the receiver ending the episode.
    """
    try:
        body = msgpack.packb(value, default=_default, use_bin_type=True)
    except CodecError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(str(exc)) from None
    if len(body) > limits.max_frame_bytes:
        raise CodecError(f"message of {len(body)} bytes exceeds the {limits.max_frame_bytes} byte limit")
    _check_structure(body, limits)
    return body


def decode(body: bytes, limits: DecodeLimits = HOST_TO_CHILD):
    """Inverse of :func:`encode`; raises :class:`CodecError` on anything but plain data and arrays.

    Memory stays bounded by ``limits``: the frame is checked against them before msgpack allocates.
    """
    if len(body) > limits.max_frame_bytes:
        raise CodecError(f"message of {len(body)} bytes exceeds the {limits.max_frame_bytes} byte limit")
    _check_structure(body, limits)
    try:
        return msgpack.unpackb(
            body,
            ext_hook=_ext_hook,
            raw=False,
            strict_map_key=False,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_bin_len,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            max_ext_len=limits.max_ext_len,
        )
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"malformed message: {exc}") from None


def write_frame(fd: int, value, limits: DecodeLimits = HOST_TO_CHILD) -> None:
    """Write ``value`` as one frame; ``limits`` are those the reader applies (see :func:`encode`)."""
    body = encode(value, limits)
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


def read_frame(fd: int, deadline: float | None = None, limits: DecodeLimits = HOST_TO_CHILD):
    """Read one frame; ``deadline`` is a ``time.monotonic()`` value, ``None`` blocks.

    The host reads the child with ``limits=CHILD_TO_HOST``. Raises FrameTimeout, PeerClosed or
    CodecError (a length header over ``limits.max_frame_bytes``, refused before the body is read, or a
    malformed or over-limit body).
    """
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > limits.max_frame_bytes:
        raise CodecError(f"frame of {size} bytes exceeds the {limits.max_frame_bytes} byte limit")
    return decode(_read_exact(fd, size, deadline), limits)
