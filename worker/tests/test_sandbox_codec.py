"""The wire format between sandbox and host carries plain data and numeric arrays, nothing else."""

import dataclasses
import os
import pickle
import random
import struct
import subprocess
import sys
import time
import tracemalloc

import msgpack
import numpy as np
import pytest

from worker.sandbox import codec


def test_it_round_trips_nested_data_and_writable_arrays():
    value = {
        "rgb": np.arange(12, dtype=np.uint8).reshape(2, 2, 3),
        "k": [1, 2.5, "x", None, True],
        3: {"z": np.float32(1.5)},
    }
    out = codec.decode(codec.encode(value))
    assert out["rgb"].dtype == np.uint8 and out["rgb"].shape == (2, 2, 3)
    out["rgb"][0, 0, 0] = 99  # programs edit images and masks in place
    assert out["k"] == [1, 2.5, "x", None, True]
    assert out[3]["z"] == 1.5


@pytest.mark.parametrize("dtype", ["O", "U5", "V8"])
def test_it_refuses_arrays_that_are_not_numeric(dtype):
    with pytest.raises(codec.CodecError):
        codec.encode(np.zeros(2, dtype=dtype))
    forged = msgpack.packb(msgpack.ExtType(codec.NDARRAY_EXT, msgpack.packb([np.dtype(dtype).str, [2], b"\0" * 16])))
    with pytest.raises(codec.CodecError):
        codec.decode(forged)


def test_it_refuses_objects_and_never_unpickles():
    with pytest.raises(codec.CodecError):
        codec.encode({"f": lambda: 1})
    with pytest.raises(codec.CodecError):
        codec.decode(pickle.dumps(os.system))


def test_it_refuses_a_payload_that_lies_about_its_size():
    forged = msgpack.packb(msgpack.ExtType(codec.NDARRAY_EXT, msgpack.packb(["<f8", [1000], b"\0" * 8])))
    with pytest.raises(codec.CodecError, match="size"):
        codec.decode(forged)


def test_it_refuses_oversized_frames_without_reading_them():
    r, w = os.pipe()
    os.write(w, struct.pack(">I", codec.MAX_FRAME_BYTES + 1))
    with pytest.raises(codec.CodecError, match="exceeds"):
        codec.read_frame(r)
    os.close(r)
    os.close(w)


def test_it_times_out_on_a_partial_frame():
    r, w = os.pipe()
    os.write(w, struct.pack(">I", 100) + b"abc")
    with pytest.raises(codec.FrameTimeout):
        codec.read_frame(r, deadline=time.monotonic() + 0.2)
    os.close(r)
    os.close(w)


# --- decode limits: whatever the sandboxed program writes, the host's memory and time stay bounded ---

LIMITS = codec.CHILD_TO_HOST


def _array_ext(dtype, shape, raw):
    return msgpack.ExtType(codec.NDARRAY_EXT, msgpack.packb([dtype, shape, raw]))


def test_legitimate_large_data_travels_as_arrays_within_the_child_limits():
    image = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    cloud = np.random.default_rng(1).random((50_000, 3))
    value = {
        "op": "call",
        "name": "transform_points",
        "args": [cloud, image],
        "kwargs": {"frame": "world"},
        "line": 3,
        "stack": [["<module>", 3]],
    }
    out = codec.decode(codec.encode(value, LIMITS), LIMITS)
    np.testing.assert_array_equal(out["args"][0], cloud)
    np.testing.assert_array_equal(out["args"][1], image)
    points = [[0.1 * i, 0.2, 0.3] for i in range(10_000)]  # a few thousand points as plain lists are fine too
    assert codec.decode(codec.encode(points, LIMITS), LIMITS) == points


def test_the_child_limits_are_tighter_than_the_host_limits():
    for field in codec.DecodeLimits.__dataclass_fields__:
        assert getattr(codec.CHILD_TO_HOST, field) <= getattr(codec.HOST_TO_CHILD, field)
    with pytest.raises(dataclasses.FrozenInstanceError):
        codec.CHILD_TO_HOST.max_depth = 1000


def test_it_refuses_more_container_elements_than_the_budget():
    body = msgpack.packb([[0] * 50_000] * 5 + [[0]])  # 250,006 elements
    with pytest.raises(codec.CodecError, match="250000 values"):
        codec.decode(body, LIMITS)
    codec.decode(msgpack.packb([[0] * 50_000] * 4 + [[0] * 49_995]), LIMITS)  # exactly the budget
    with pytest.raises(codec.CodecError, match="values"):  # map keys count too
        codec.decode(msgpack.packb([{i: i for i in range(10_000)}] * 13), LIMITS)


def test_the_sender_learns_about_a_value_the_receiver_would_refuse():
    with pytest.raises(codec.CodecError, match="values"):
        codec.encode([[0] * 50_000] * 6, LIMITS)
    codec.encode([[0] * 50_000] * 6)  # the host's own messages may be larger


@pytest.mark.parametrize(
    "body, match",
    [
        (msgpack.packb([0] * 100_001), "100000 item limit"),
        (msgpack.packb({i: 0 for i in range(10_001)}), "10000 entry limit"),
        (msgpack.packb("x" * (1024 * 1024 + 1)), "byte limit"),
        (msgpack.packb(b"x" * (1024 * 1024 + 1), use_bin_type=True), "byte limit"),
    ],
)
def test_it_refuses_oversized_strings_binaries_lists_and_maps(body, match):
    with pytest.raises(codec.CodecError, match=match):
        codec.decode(body, LIMITS)


def test_array_bytes_count_against_the_frame_and_extension_limits():
    big = np.zeros(9 * 1024 * 1024, np.uint8)
    with pytest.raises(codec.CodecError, match="exceeds"):
        codec.encode(big, LIMITS)
    with pytest.raises(codec.CodecError, match="exceeds the 8388608 byte limit"):
        codec.decode(codec.encode(big), LIMITS)
    roomy_frame = dataclasses.replace(LIMITS, max_frame_bytes=16 * 1024 * 1024)
    with pytest.raises(codec.CodecError, match="array of .* bytes exceeds"):
        codec.decode(codec.encode(big), roomy_frame)


@pytest.mark.parametrize("limits", [codec.CHILD_TO_HOST, codec.HOST_TO_CHILD])
def test_deep_nesting_is_a_codec_error_never_a_recursion_error(limits):
    nested = []
    for _ in range(limits.max_depth - 1):
        nested = [nested]
    assert codec.decode(codec.encode(nested, limits), limits) == nested  # exactly max_depth levels
    with pytest.raises(codec.CodecError, match="deeper"):
        codec.decode(msgpack.packb([nested]), limits)
    with pytest.raises(codec.CodecError, match="deeper"):
        codec.decode(b"\x91" * 200_000 + b"\xc0", limits)  # far beyond msgpack's and Python's own stacks
    with pytest.raises(codec.CodecError, match="deeper"):
        codec.decode(b"\x81\xa1k" * 200_000 + b"\xc0", limits)


def _amplifier(items: int) -> bytes:
    """The ``transform_points([[]] * 66_000_000, ...)`` shape: one byte on the wire per empty list."""
    return b"\xdd" + struct.pack(">I", items) + b"\x90" * items


def test_the_amplification_shape_is_refused_quickly_with_bounded_memory():
    body = _amplifier(66_000_000)
    assert len(body) < codec.MAX_FRAME_BYTES  # passes the host's own frame size limit
    widest = dataclasses.replace(LIMITS, max_frame_bytes=codec.MAX_FRAME_BYTES, max_array_len=2**32 - 1)
    # Many arrays each under max_array_len: only the element budget stops this one, after walking it.
    chunked = b"\xdc\x03\xe8" + _amplifier(60_000) * 1000
    roomy_frame = dataclasses.replace(LIMITS, max_frame_bytes=codec.MAX_FRAME_BYTES)
    cases = [
        (body, LIMITS, "byte limit"),
        (body, codec.HOST_TO_CHILD, "item limit"),
        (body, widest, "values"),
        (chunked, roomy_frame, "values"),
    ]
    for data, limits, match in cases:
        started = time.monotonic()
        with pytest.raises(codec.CodecError, match=match):
            codec.decode(data, limits)
        assert time.monotonic() - started < 1  # about 0.1 s for the chunked case, nothing for the others
        tracemalloc.start()
        try:
            with pytest.raises(codec.CodecError, match=match):
                codec.decode(data, limits)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024, f"{match}: {peak} bytes allocated"  # about 1 KiB: nothing is built


_WORST_CASE_SCRIPT = """
import resource, sys, time
import numpy as np
from worker.sandbox import codec
empty = np.zeros(0, np.uint8)
body = codec.encode([[empty] * 100_000, [empty] * 100_000, [empty] * 49_997], codec.CHILD_TO_HOST)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
out = codec.decode(body, codec.CHILD_TO_HOST)
print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, len(out[2]))
"""


def test_decoding_a_full_budget_of_the_costliest_elements_stays_small():
    """Zero-size arrays are the most expensive element per byte; a full budget of them stays modest."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        [sys.executable, "-c", _WORST_CASE_SCRIPT], cwd=root, capture_output=True, text=True, check=True, timeout=120
    )
    seconds, rss_growth_kib, decoded = done.stdout.split()
    assert int(decoded) == 49_997
    assert int(rss_growth_kib) < 100 * 1024  # about 30 MiB measured
    assert float(seconds) < 10  # about 1 s measured


def test_read_frame_refuses_an_oversized_header_under_the_child_limits_without_reading_the_body():
    r, w = os.pipe()
    try:
        os.write(w, struct.pack(">I", LIMITS.max_frame_bytes + 1))  # no body follows: reading it would time out
        with pytest.raises(codec.CodecError, match="exceeds"):
            codec.read_frame(r, deadline=time.monotonic() + 5, limits=LIMITS)
        body = codec.encode({"op": "done"}, LIMITS)
        os.write(w, struct.pack(">I", len(body)) + body)
        assert codec.read_frame(r, deadline=time.monotonic() + 5, limits=LIMITS) == {"op": "done"}
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xc1",
        b"\x92\x01",
        b"\x01\x02",
        b"\xdb\xff\xff\xff\xff",
        b"\xdd\x00\x00\x00",
        b"\xcb\x00",
        msgpack.packb({(1,): 2}),
        msgpack.packb([[1]], use_bin_type=True)[:-1],
        b"\x81\x91\x01\x02",  # a list as a map key
        msgpack.packb(msgpack.ExtType(7, b"x")),
        msgpack.packb([msgpack.Timestamp(1, 0)]),  # msgpack would decode this one itself
        msgpack.packb(msgpack.ExtType(codec.NDARRAY_EXT, b"\xc1")),
        msgpack.packb(msgpack.ExtType(codec.NDARRAY_EXT, msgpack.packb(["<f8", [1]]))),
        msgpack.packb(msgpack.ExtType(codec.NDARRAY_EXT, msgpack.packb([["f8", "f8"], [1], b"\0" * 8]))),
        msgpack.packb(msgpack.ExtType(codec.NDARRAY_EXT, msgpack.packb(["not a dtype", [1], b"\0" * 8]))),
        msgpack.packb(msgpack.ExtType(codec.NDARRAY_EXT, msgpack.packb(["(2,)f8", [1], b"\0" * 16]))),
        msgpack.packb(_array_ext("<f8", [True], b"\0" * 8)),
        msgpack.packb(_array_ext("<f8", [-1], b"")),
        msgpack.packb(_array_ext("<f8", [1.0], b"\0" * 8)),
        msgpack.packb(_array_ext("<f8", [1] * 9, b"\0" * 8)),
        msgpack.packb(_array_ext("<f8", [0, 2**63], b"")),
        msgpack.packb(_array_ext("<f8", [2**32, 2**32, 0], b"")),
        msgpack.packb(_array_ext("<f8", [1], "\0" * 8)),
    ],
)
def test_every_malformed_body_is_a_codec_error(body):
    for limits in (codec.CHILD_TO_HOST, codec.HOST_TO_CHILD):
        with pytest.raises(codec.CodecError):
            codec.decode(body, limits)


def test_random_and_corrupted_bodies_only_ever_raise_codec_errors():
    rng = random.Random(1234)
    valid = codec.encode(
        {
            "op": "call",
            "name": "f",
            "args": [np.arange(6.0).reshape(2, 3), [1, "a", None]],
            "kwargs": {"k": {"x": 1.5}},
            "line": 2,
            "stack": [["<module>", 2]],
        }
    )
    for _ in range(3000):
        if rng.random() < 0.5:
            body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64)))
        else:
            body = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                body[rng.randrange(len(body))] = rng.getrandbits(8)
            body = bytes(body[: rng.randrange(1, len(body) + 1)])
        try:
            codec.decode(body, LIMITS)
        except codec.CodecError:
            pass
