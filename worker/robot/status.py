"""Status codes of primitive calls and episodes, each with a one-line meaning for people and agents."""

OK = "OK"
NO_DETECTION = "NO_DETECTION"
IK_FAILED = "IK_FAILED"
PLANNING_ERROR = "PLANNING_ERROR"
COLLISION = "COLLISION"
NOT_REACHED = "NOT_REACHED"
GRASP_EMPTY = "GRASP_EMPTY"
BAD_ARGUMENT = "BAD_ARGUMENT"
TIMEOUT = "TIMEOUT"
POLICY_VIOLATION = "POLICY_VIOLATION"
EXCEPTION = "EXCEPTION"
MEMORY_LIMIT = "MEMORY_LIMIT"
SANDBOX_CRASH = "SANDBOX_CRASH"
INTERNAL_ERROR = "INTERNAL_ERROR"
SANDBOX_PROTOCOL_ERROR = "SANDBOX_PROTOCOL_ERROR"
SANDBOX_UNAVAILABLE = "SANDBOX_UNAVAILABLE"
TRACE_LIMIT = "TRACE_LIMIT"

MESSAGES = {
    OK: "the call did what was asked",
    NO_DETECTION: "perception found nothing matching the prompt in this image",
    IK_FAILED: "no joint configuration reaches the requested pose within tolerance",
    PLANNING_ERROR: "no collision-free path to the target was found",
    COLLISION: "the motion would collide or was stopped by contact",
    NOT_REACHED: "the arm stopped short of the target",
    GRASP_EMPTY: "the gripper closed on nothing",
    BAD_ARGUMENT: "the arguments do not fit the function's documented shapes or types",
    TIMEOUT: "the episode ran past its wall-clock limit and the program was stopped",
    POLICY_VIOLATION: "the program reached for something outside the robot API (imports, files, "
    "interpreter internals, simulator state)",
    EXCEPTION: "the program raised an exception",
    MEMORY_LIMIT: "the program exceeded the sandbox memory cap",
    SANDBOX_CRASH: "the sandbox process died",
    INTERNAL_ERROR: "the execution engine failed; this is a bug in ASPIRE web, not in the program",
    SANDBOX_PROTOCOL_ERROR: "the sandbox sent the host a message outside the protocol (malformed, oversized or "
    "forged); the program was stopped",
    SANDBOX_UNAVAILABLE: "the worker cannot start its OS sandbox (bubblewrap and seccomp) and refuses to run "
    "programs uncontained",
    TRACE_LIMIT: "the episode exceeded its trace budget (robot API calls or recorded bytes); the program was stopped",
}

#: Statuses that mean the call or episode went wrong (a keyframe is captured for these).
FAILURES = frozenset(MESSAGES) - {OK}


def message(status: str) -> str:
    return MESSAGES.get(status, status)
