"""Every message from the sandbox child is checked against the protocol before the host acts on it."""

import msgpack
import numpy as np
import pytest

from worker.sandbox import codec, protocol
from worker.sandbox.protocol import CallFrame, DoneFrame, ProtocolError, parse_child_message


def call(**overrides):
    msg = {"op": "call", "name": "get_observation", "args": [], "kwargs": {}, "line": 3, "stack": [["<module>", 3]]}
    msg.update(overrides)
    return msg


def done(**overrides):
    msg = {"op": "done", "status": "OK", "error": "", "line": 0, "stdout": "hello\n"}
    msg.update(overrides)
    return msg


def test_it_parses_a_call_as_the_child_sends_it_over_the_wire():
    cloud = np.arange(6.0).reshape(2, 3)
    wire = codec.encode(
        call(
            name="transform_points",
            args=[cloud, "world"],
            kwargs={"to_frame": "base"},
            line=7,
            stack=[["<module>", 9], ["helper", 7]],
        ),
        codec.CHILD_TO_HOST,
    )
    frame = parse_child_message(codec.decode(wire, codec.CHILD_TO_HOST))
    assert isinstance(frame, CallFrame)
    assert frame.name == "transform_points" and frame.kwargs == {"to_frame": "base"} and frame.line == 7
    np.testing.assert_array_equal(frame.args[0], cloud)
    assert frame.args[1] == "world"
    assert frame.stack == [("<module>", 9), ("helper", 7)]


@pytest.mark.parametrize("status", sorted(protocol.DONE_STATUSES))
def test_it_parses_every_way_a_program_can_end(status):
    frame = parse_child_message(done(status=status, error="ValueError: x", line=4))
    assert frame == DoneFrame(status, "ValueError: x", 4, "hello\n")


@pytest.mark.parametrize("msg", [None, [], "done", 7, b"call", [["op", "done"]]])
def test_it_refuses_a_message_that_is_not_a_map(msg):
    with pytest.raises(ProtocolError, match="must be a map"):
        parse_child_message(msg)


@pytest.mark.parametrize("op", ["start", "ok", "CALL", "", None, 1, True, ["call"], b"call", np.array([1, 2])])
def test_it_refuses_unknown_ops(op):
    with pytest.raises(ProtocolError, match="unknown op"):
        parse_child_message(call(op=op))


def test_it_refuses_a_message_without_op():
    msg = call()
    del msg["op"]
    with pytest.raises(ProtocolError, match="no op"):
        parse_child_message(msg)


@pytest.mark.parametrize(
    "make, key",
    [(call, k) for k in ("name", "args", "kwargs", "line", "stack")]
    + [(done, k) for k in ("status", "error", "line", "stdout")],
)
def test_it_refuses_missing_keys(make, key):
    msg = make()
    del msg[key]
    with pytest.raises(ProtocolError, match=f"missing keys: {key}"):
        parse_child_message(msg)


@pytest.mark.parametrize(
    "msg",
    [
        call(status="OK"),
        call(result=1),
        done(name="get_observation"),
        done(ok=True),
        {**call(), 1: 2},
        {**done(), None: 0},
        {**done(), "<script>" * 1000: 0},
    ],
)
def test_it_refuses_unknown_keys(msg):
    with pytest.raises(ProtocolError, match="unknown keys") as info:
        parse_child_message(msg)
    assert len(str(info.value)) < 200  # attacker text is never echoed in full


@pytest.mark.parametrize("make", [call, done])
@pytest.mark.parametrize(
    "line",
    [
        1.0,
        3.5,
        float("nan"),
        "3",
        b"3",
        None,
        True,
        False,
        -1,
        10_000_001,
        2**63,
        -(2**63),
        [3],
        {"line": 3},
        np.int64(3),
    ],
)
def test_it_refuses_a_line_that_is_not_a_sane_int(make, line):
    with pytest.raises(ProtocolError, match="line must be an int"):
        parse_child_message(make(line=line))


@pytest.mark.parametrize("make", [call, done])
def test_line_bounds_are_inclusive(make):
    assert parse_child_message(make(line=0)).line == 0
    assert parse_child_message(make(line=protocol.MAX_LINE)).line == protocol.MAX_LINE


@pytest.mark.parametrize(
    "name",
    [
        None,
        1,
        b"get_observation",
        ["get_observation"],
        "",
        "1abc",
        "get observation",
        "os.system",
        "__import__('os')",
        "a" * 65,
        "na\u00efve",
        "x\n",
        "<b>x</b>",
    ],
)
def test_it_refuses_a_call_name_that_is_not_a_short_identifier(name):
    with pytest.raises(ProtocolError, match="call name must be an identifier"):
        parse_child_message(call(name=name))


def test_a_call_name_of_the_maximum_length_is_accepted():
    assert parse_child_message(call(name="a" * 64)).name == "a" * 64


@pytest.mark.parametrize("args", [None, "abc", {"a": 1}, (1, 2), list(range(65))])
def test_it_refuses_args_that_are_not_a_short_list(args):
    with pytest.raises(ProtocolError, match="args must be a list of at most 64"):
        parse_child_message(call(args=args))
    assert len(parse_child_message(call(args=list(range(64)))).args) == 64


@pytest.mark.parametrize("kwargs", [None, [], [["k", 1]], "k=1", {f"k{i}": i for i in range(65)}])
def test_it_refuses_kwargs_that_are_not_a_short_map(kwargs):
    with pytest.raises(ProtocolError, match="kwargs must be a map of at most 64"):
        parse_child_message(call(kwargs=kwargs))


@pytest.mark.parametrize("key", [1, None, b"speed", 1.5, True, "", "not an identifier", "1x", "k" * 65])
def test_it_refuses_keyword_names_that_are_not_short_identifier_strings(key):
    with pytest.raises(ProtocolError, match="keyword argument name must be an identifier"):
        parse_child_message(call(kwargs={"speed": 1, key: 2}))


@pytest.mark.parametrize(
    "stack",
    [
        None,
        "<module>:3",
        {"<module>": 3},
        [("<module>", 3, 4)],
        [["<module>"]],
        [[3, "<module>"]],
        [[None, 3]],
        [[b"f", 3]],
        [["f", "3"]],
        [["f", 3.0]],
        [["f", True]],
        [["f", -1]],
        [["f", 10_000_001]],
        ["f"],
        [None],
        [{"f": 3}],
    ],
)
def test_it_refuses_bad_stack_shapes(stack):
    with pytest.raises(ProtocolError, match="call stack"):
        parse_child_message(call(stack=stack))


def test_a_500_deep_stack_of_5000_character_names_is_capped():
    name = "<script>alert(1)</script>" * 200
    stack = [[f"{name}{i}", i + 1] for i in range(500)]
    frame = parse_child_message(call(stack=stack))
    assert len(frame.stack) == protocol.MAX_STACK_FRAMES == 32
    kept = list(range(protocol.STACK_OUTER_FRAMES)) + list(range(500 - protocol.STACK_INNER_FRAMES, 500))
    assert [line for _, line in frame.stack] == [i + 1 for i in kept]  # outermost 4 and innermost 28 frames
    assert all(len(function) == protocol.MAX_FRAME_NAME_CHARS for function, _ in frame.stack)
    assert frame.stack[0][0] == name[:100]
    assert sum(len(function) for function, _ in frame.stack) <= 3200


def test_a_short_stack_is_kept_whole():
    stack = [[f"f{i}", i] for i in range(protocol.MAX_STACK_FRAMES)]
    assert parse_child_message(call(stack=stack)).stack == [(f"f{i}", i) for i in range(32)]


@pytest.mark.parametrize(
    "status",
    [
        "SANDBOX_CRASH",
        "INTERNAL_ERROR",
        "TIMEOUT",
        "SANDBOX_PROTOCOL_ERROR",
        "ok",
        "OK ",
        "",
        None,
        0,
        1,
        True,
        ["OK"],
        {"OK": 1},
        b"OK",
    ],
)
def test_it_refuses_forged_or_malformed_done_statuses(status):
    with pytest.raises(ProtocolError, match="done status must be one of"):
        parse_child_message(done(status=status))


@pytest.mark.parametrize("key", ["error", "stdout"])
@pytest.mark.parametrize("value", [None, 1, b"text", ["text"], {"text": 1}])
def test_it_refuses_done_text_that_is_not_a_string(key, value):
    with pytest.raises(ProtocolError, match=f"done {key} must be a string"):
        parse_child_message(done(**{key: value}))


def test_4_mb_of_stdout_is_cut_to_its_tail():
    stdout = "".join(f"line {i}\n" for i in range(400_000)) + "THE END"
    assert len(stdout) > 4_000_000
    frame = parse_child_message(done(stdout=stdout))
    assert frame.stdout.startswith(protocol.STDOUT_DROPPED_MARKER)
    assert frame.stdout.endswith("line 399999\nTHE END")
    assert frame.stdout[len(protocol.STDOUT_DROPPED_MARKER) :] == stdout[-protocol.MAX_STDOUT_CHARS :]


def test_stdout_within_the_cap_and_the_childs_own_tail_are_unchanged():
    assert parse_child_message(done(stdout="x" * 20_000)).stdout == "x" * 20_000
    child_tail = protocol.STDOUT_DROPPED_MARKER + "y" * 20_000  # what child.py's bounded buffer produces
    assert parse_child_message(done(stdout=child_tail)).stdout == child_tail


def test_long_error_text_is_cut():
    error = "RobotAPIError: " + "<img src=x onerror=alert(1)>" * 5000
    frame = parse_child_message(done(status="EXCEPTION", error=error, line=5))
    assert frame.error == error[: protocol.MAX_ERROR_CHARS] + protocol.ERROR_TRUNCATED_MARKER
    assert parse_child_message(done(error="e" * 2000)).error == "e" * 2000


def test_protocol_errors_are_value_errors_with_bounded_messages():
    assert issubclass(ProtocolError, ValueError)
    with pytest.raises(ProtocolError) as info:
        parse_child_message(call(name="x" * 1_000_000))
    assert len(str(info.value)) < 200


def test_the_schema_holds_for_messages_decoded_from_hostile_bytes():
    """Whatever decodes from the wire either parses or raises ProtocolError, never anything else."""
    values = [
        None,
        True,
        0,
        -1,
        2**64 - 1,
        1.5,
        "",
        "x" * 100,
        b"\0",
        [],
        {},
        [1, "a"],
        {"a": [1]},
        np.zeros((2, 2), np.uint8),
    ]
    for base in (call(), done()):
        for key in base:
            for value in values:
                msg = codec.decode(codec.encode({**base, key: value}, codec.CHILD_TO_HOST), codec.CHILD_TO_HOST)
                try:
                    parse_child_message(msg)
                except ProtocolError:
                    pass
    forged = msgpack.packb({"op": "done", "status": "OK", "error": "", "line": 0, "stdout": "", "extra": 1})
    with pytest.raises(ProtocolError):
        parse_child_message(codec.decode(forged, codec.CHILD_TO_HOST))
