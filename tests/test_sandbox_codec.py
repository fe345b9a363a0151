"""The wire format between sandbox and host carries plain data and numeric arrays, nothing else."""

import os
import pickle
import struct

import msgpack
import numpy as np
import pytest

from worker.sandbox import codec


def test_it_round_trips_nested_data_and_writable_arrays():
    value = {"rgb": np.arange(12, dtype=np.uint8).reshape(2, 2, 3), "k": [1, 2.5, "x", None, True], 3: {"z": np.float32(1.5)}}
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
    import time

    r, w = os.pipe()
    os.write(w, struct.pack(">I", 100) + b"abc")
    with pytest.raises(codec.FrameTimeout):
        codec.read_frame(r, deadline=time.monotonic() + 0.2)
    os.close(r)
    os.close(w)
