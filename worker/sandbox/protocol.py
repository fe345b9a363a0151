"""Schema of the messages the sandbox child sends to the host, checked before the host uses them.

The program runs with full Python in the child, so it can write any bytes on the pipe: a forged
``done`` frame, a 4 MB stdout, a stack of a thousand frames named with HTML. :mod:`worker.sandbox.codec`
bounds what a frame can decode into (read it with ``limits=codec.CHILD_TO_HOST``); this module turns the
decoded value into a :class:`CallFrame` or :class:`DoneFrame` whose every field has the expected type
and range, or raises :class:`ProtocolError`. Sizes that an honest child can legitimately exceed (stdout,
error text, deep recursion, long function names) are truncated rather than refused.

A ``done`` frame only reports how the program ended, in the child's words; the host still decides the
episode's outcome (its own policy violations, timeouts and task checks come first). Text fields are
plain strings of any content: whoever renders them must escape them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.robot.status import EpisodeStatus

#: Longest API function or keyword-argument name in a call (ASCII identifiers only).
MAX_NAME_CHARS = 64
MAX_ARGS = 64
MAX_KWARGS = 64
#: Largest line number accepted anywhere (call line, done line, stack frames).
MAX_LINE = 10_000_000
#: How a program may end, as the child reports it. TIMEOUT, SANDBOX_CRASH and the like are the host's to
#: say; a child claiming them is lying.
DONE_STATUSES = frozenset(
    {EpisodeStatus.OK, EpisodeStatus.EXCEPTION, EpisodeStatus.POLICY_VIOLATION, EpisodeStatus.MEMORY_LIMIT}
)
#: A longer stack keeps its outermost STACK_OUTER_FRAMES and innermost STACK_INNER_FRAMES frames.
STACK_OUTER_FRAMES = 4
STACK_INNER_FRAMES = 28
MAX_STACK_FRAMES = STACK_OUTER_FRAMES + STACK_INNER_FRAMES
#: Function names in stack frames are cut to this many characters.
MAX_FRAME_NAME_CHARS = 100
#: Program output keeps its last MAX_STDOUT_CHARS characters, after STDOUT_DROPPED_MARKER.
MAX_STDOUT_CHARS = 20_000
STDOUT_DROPPED_MARKER = "[... earlier output dropped]\n"
#: Error text keeps its first MAX_ERROR_CHARS characters, followed by ERROR_TRUNCATED_MARKER.
MAX_ERROR_CHARS = 2_000
ERROR_TRUNCATED_MARKER = " [... truncated]"

_CALL_KEYS = frozenset({"op", "name", "args", "kwargs", "line", "stack"})
_DONE_KEYS = frozenset({"op", "status", "error", "line", "stdout"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHOWN_CHARS = 60


class ProtocolError(ValueError):
    """A message from the sandbox child does not follow the protocol."""


@dataclass
class CallFrame:
    """A robot API call: ``name(*args, **kwargs)`` made at program ``line``.

    ``stack`` holds (function, line) pairs, outermost first, capped as described in the module constants.
    """

    name: str
    args: list
    kwargs: dict
    line: int
    stack: list[tuple[str, int]]


@dataclass
class DoneFrame:
    """The child's report that the program ended: how (``status``), why, where, and its output tail."""

    status: str
    error: str
    line: int
    stdout: str


def _show(value) -> str:
    """A short description of an untrusted value for an error message, never costlier than a slice."""
    if isinstance(value, (str, bytes)):
        return repr(value[:_SHOWN_CHARS]) + ("..." if len(value) > _SHOWN_CHARS else "")
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def _check_keys(msg: dict, expected: frozenset, op: str) -> None:
    unknown = [key for key in msg if key not in expected]
    if unknown:
        raise ProtocolError(f"{op} message has unknown keys: {', '.join(_show(key) for key in unknown[:5])}")
    missing = sorted(expected - msg.keys())
    if missing:
        raise ProtocolError(f"{op} message is missing keys: {', '.join(missing)}")


def _line(value, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_LINE:
        raise ProtocolError(f"{what} must be an int in 0..{MAX_LINE}, got {_show(value)}")
    return value


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _identifier(value, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME_CHARS or not _IDENTIFIER.fullmatch(value):
        raise ProtocolError(f"{what} must be an identifier of 1..{MAX_NAME_CHARS} ASCII characters, got {_show(value)}")
    return value


def _stack(value) -> list[tuple[str, int]]:
    if not isinstance(value, list):
        raise ProtocolError(f"call stack must be a list, got {type(value).__name__}")
    frames = []
    for i, frame in enumerate(value):
        if not isinstance(frame, (list, tuple)) or len(frame) != 2:
            raise ProtocolError(f"call stack frame {i} must be a [function, line] pair, got {_show(frame)}")
        function = _text(frame[0], f"call stack frame {i} function")
        frames.append((function[:MAX_FRAME_NAME_CHARS], _line(frame[1], f"call stack frame {i} line")))
    if len(frames) > MAX_STACK_FRAMES:
        frames = frames[:STACK_OUTER_FRAMES] + frames[-STACK_INNER_FRAMES:]
    return frames


def _parse_call(msg: dict) -> CallFrame:
    _check_keys(msg, _CALL_KEYS, "call")
    name = _identifier(msg["name"], "call name")
    args, kwargs = msg["args"], msg["kwargs"]
    if not isinstance(args, list) or len(args) > MAX_ARGS:
        raise ProtocolError(f"call args must be a list of at most {MAX_ARGS} values")
    if not isinstance(kwargs, dict) or len(kwargs) > MAX_KWARGS:
        raise ProtocolError(f"call kwargs must be a map of at most {MAX_KWARGS} entries")
    for key in kwargs:
        _identifier(key, "keyword argument name")
    return CallFrame(name, args, kwargs, _line(msg["line"], "call line"), _stack(msg["stack"]))


def _parse_done(msg: dict) -> DoneFrame:
    _check_keys(msg, _DONE_KEYS, "done")
    status = msg["status"]
    if not isinstance(status, str) or status not in DONE_STATUSES:
        raise ProtocolError(f"done status must be one of {', '.join(sorted(DONE_STATUSES))}, got {_show(status)}")
    error = _text(msg["error"], "done error")
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + ERROR_TRUNCATED_MARKER
    stdout = _text(msg["stdout"], "done stdout")
    if len(stdout) > MAX_STDOUT_CHARS:
        stdout = STDOUT_DROPPED_MARKER + stdout[-MAX_STDOUT_CHARS:]
    return DoneFrame(status, error, _line(msg["line"], "done line"), stdout)


def parse_child_message(msg) -> CallFrame | DoneFrame:
    """Validate one decoded child -> host message and return it as a typed frame.

    Raises :class:`ProtocolError` for anything but ``{"op": "call", "name", "args", "kwargs", "line",
    "stack"}`` or ``{"op": "done", "status", "error", "line", "stdout"}`` with fields of the right types
    and ranges. Truncates, instead of refusing: stacks deeper than ``MAX_STACK_FRAMES`` (the outermost
    ``STACK_OUTER_FRAMES`` and innermost ``STACK_INNER_FRAMES`` frames are kept, the middle of a deep
    recursion is dropped), stack function names to ``MAX_FRAME_NAME_CHARS``, stdout to its last
    ``MAX_STDOUT_CHARS`` characters behind ``STDOUT_DROPPED_MARKER``, and error text to its first
    ``MAX_ERROR_CHARS`` characters followed by ``ERROR_TRUNCATED_MARKER``.
    """
    if not isinstance(msg, dict):
        raise ProtocolError(f"a message must be a map, got {type(msg).__name__}")
    if "op" not in msg:
        raise ProtocolError("message has no op")
    op = msg["op"]
    if isinstance(op, str) and op == "call":
        return _parse_call(msg)
    if isinstance(op, str) and op == "done":
        return _parse_done(msg)
    raise ProtocolError(f"unknown op {_show(op)}")
