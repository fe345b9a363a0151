"""The one vocabulary of outcomes: :class:`CallStatus` for primitive calls, :class:`EpisodeStatus` for how a
program's episode ended, each value with a one-line meaning for people and agents.

Members are strings (``CallStatus.OK == "OK"``), so they are stored as-is in the database, sent as-is in
JSON and msgpack, and compared with what a program or the API hands back. Model fields take their
``choices`` from :func:`choices`; templates and the API show the values. The module-level names
(``st.OK``, ``st.TIMEOUT`` ...) are the same members, for the engine's brevity.
"""

from __future__ import annotations

import enum


class _Status(str, enum.Enum):
    """A string enum whose str() and format() are the bare value (as enum.StrEnum in Python 3.11+)."""

    __str__ = str.__str__
    __format__ = str.__format__

    @property
    def message(self) -> str:
        return MESSAGES[self]


class CallStatus(_Status):
    """How one primitive call ended (the trace's per-call status)."""

    OK = "OK"
    NO_DETECTION = "NO_DETECTION"
    IK_FAILED = "IK_FAILED"
    PLANNING_ERROR = "PLANNING_ERROR"
    COLLISION = "COLLISION"
    NOT_REACHED = "NOT_REACHED"
    GRASP_EMPTY = "GRASP_EMPTY"
    BAD_ARGUMENT = "BAD_ARGUMENT"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    EXCEPTION = "EXCEPTION"


class EpisodeStatus(_Status):
    """How a program's episode ended. ``RUNNING`` while it runs; ``OK`` means the program ran to its
    end (whether the task succeeded is the episode's ``success``, judged on the simulator)."""

    RUNNING = "RUNNING"
    OK = "OK"
    EXCEPTION = "EXCEPTION"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    TIMEOUT = "TIMEOUT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    SANDBOX_CRASH = "SANDBOX_CRASH"
    SANDBOX_PROTOCOL_ERROR = "SANDBOX_PROTOCOL_ERROR"
    SANDBOX_UNAVAILABLE = "SANDBOX_UNAVAILABLE"
    TRACE_LIMIT = "TRACE_LIMIT"
    STEP_BUDGET = "STEP_BUDGET"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CANCELLED = "CANCELLED"


#: What a motion primitive returns on success (a result value, not a status: failures carry a CallStatus).
REACHED = "REACHED"

OK = CallStatus.OK
NO_DETECTION = CallStatus.NO_DETECTION
IK_FAILED = CallStatus.IK_FAILED
PLANNING_ERROR = CallStatus.PLANNING_ERROR
COLLISION = CallStatus.COLLISION
NOT_REACHED = CallStatus.NOT_REACHED
GRASP_EMPTY = CallStatus.GRASP_EMPTY
BAD_ARGUMENT = CallStatus.BAD_ARGUMENT
EXCEPTION = CallStatus.EXCEPTION
POLICY_VIOLATION = EpisodeStatus.POLICY_VIOLATION
RUNNING = EpisodeStatus.RUNNING
TIMEOUT = EpisodeStatus.TIMEOUT
MEMORY_LIMIT = EpisodeStatus.MEMORY_LIMIT
SANDBOX_CRASH = EpisodeStatus.SANDBOX_CRASH
SANDBOX_PROTOCOL_ERROR = EpisodeStatus.SANDBOX_PROTOCOL_ERROR
SANDBOX_UNAVAILABLE = EpisodeStatus.SANDBOX_UNAVAILABLE
TRACE_LIMIT = EpisodeStatus.TRACE_LIMIT
STEP_BUDGET = EpisodeStatus.STEP_BUDGET
INTERNAL_ERROR = EpisodeStatus.INTERNAL_ERROR
CANCELLED = EpisodeStatus.CANCELLED

MESSAGES = {
    "OK": "the call did what was asked",
    "RUNNING": "the episode is running",
    "NO_DETECTION": "perception found nothing matching the prompt in this image",
    "IK_FAILED": "no joint configuration reaches the requested pose within tolerance",
    "PLANNING_ERROR": "no collision-free path to the target was found",
    "COLLISION": "the motion would collide or was stopped by contact",
    "NOT_REACHED": "the arm stopped short of the target",
    "GRASP_EMPTY": "the gripper closed on nothing",
    "BAD_ARGUMENT": "the arguments do not fit the function's documented shapes or types",
    "TIMEOUT": "the episode ran past its wall-clock limit and the program was stopped",
    "POLICY_VIOLATION": "the program reached for something outside the robot API (imports, files, "
    "interpreter internals, simulator state)",
    "EXCEPTION": "the program raised an exception",
    "MEMORY_LIMIT": "the program exceeded the sandbox memory cap",
    "SANDBOX_CRASH": "the sandbox process died",
    "INTERNAL_ERROR": "the execution engine failed; this is a bug in ASPIRE web, not in the program",
    "SANDBOX_PROTOCOL_ERROR": "the sandbox sent the host a message outside the protocol (malformed, oversized or "
    "forged); the program was stopped",
    "SANDBOX_UNAVAILABLE": "the worker cannot start its OS sandbox (bubblewrap and seccomp) and refuses to run "
    "programs uncontained",
    "CANCELLED": "the run was cancelled before the episode ended; it holds no result",
    "TRACE_LIMIT": "the episode exceeded its trace budget (robot API calls or recorded bytes); the program was stopped",
    "STEP_BUDGET": "the episode used its benchmark control-step budget before the task was done; the program was "
    "stopped",
}

#: Statuses that mean the call or episode went wrong (a keyframe is captured for these).
FAILURES = frozenset(MESSAGES) - {"OK", "RUNNING", "CANCELLED"}


def message(status: str) -> str:
    """The one-line meaning of a call or episode status (the status itself when unknown)."""
    return MESSAGES.get(str(status), str(status))


def choices(enum_cls: type[_Status]) -> list[tuple[str, str]]:
    """``choices`` for a model CharField holding members of ``enum_cls``."""
    return [(member.value, member.value) for member in enum_cls]
