"""Failure signals: what one episode's trace shows about how it failed, read in one place.

``extract_signals(calls, status, error)`` reads the calls of one episode in order (objects with
``primitive``, ``status``, ``message``, ``args``, ``result`` and, when the trace kept them,
``artifacts``: the search's CallSummary, the database's PrimitiveCall rows) and returns one dict. Every
reader uses these keys; a key with nothing to report is left out::

    episode_status        "EXCEPTION"                 how the episode ended
    statuses              ["GRASP_EMPTY", "EXCEPTION"]  statuses of the calls that did not end OK, then
                                                      the episode's own (unless OK or RUNNING); no repeats
    primitives            ["close_gripper"]           primitives of the calls that did not end OK
    call_statuses         {"move_to_pose": ["OK", "IK_FAILED"]}  every call's status, per primitive
    gripper_widths_m      [0.0012]                    the gripper width after each close_gripper, metres
    gripper_width_m       0.0012                      the last of them
    detections            1                           detections in the last perception result
    detections_by_prompt  {"red cube": 0}             detections in the last result for each text prompt
    blocked_by            ["arm0 left finger would meet occupied space at [0.59, 0.04, 0.02] m, seen by
                          camera agentview, 0.031 m above the support surface"]  the messages of
                                                      PLANNING_ERROR and COLLISION calls (link, perceived
                                                      point, camera; or the link and force of a contact)
    error                 "RuntimeError: missed"      the episode's error text
    exception             "RuntimeError"              its exception type (the text before the first colon)

The search hands the whole dict to agents (worker.search.core.trace_signals); a skill's failure
signature matches the keys in ``MATCHED_KEYS`` (worker.library.signatures). The gripper width and
detection counts come from the call's artifacts (the engine's own record) when present, else from its
result. Plain Python, no Django.
"""

from __future__ import annotations

from worker.robot import status as st
from worker.robot.status import EpisodeStatus

#: The status of an episode still in progress (not a failure).
RUNNING = EpisodeStatus.RUNNING

SIGNAL_KEYS = (
    "episode_status",
    "statuses",
    "primitives",
    "call_statuses",
    "gripper_widths_m",
    "gripper_width_m",
    "detections",
    "detections_by_prompt",
    "blocked_by",
    "error",
    "exception",
)
#: The signals a skill's failure signature is matched on (worker.library.signatures.match_signature).
MATCHED_KEYS = ("statuses", "primitives", "gripper_width_m", "detections", "error")
#: Call statuses whose message names what blocked the move.
BLOCKING_STATUSES = (st.PLANNING_ERROR, st.COLLISION)


def extract_signals(calls, status: str, error: str = "") -> dict:
    """The failure signals of one episode: its calls in order, its end status and error text (see the
    module docstring for the keys)."""
    failed = [c for c in calls if c.status != st.OK]
    statuses = [c.status for c in failed] + ([status] if status and status not in (st.OK, RUNNING) else [])
    call_statuses: dict[str, list[str]] = {}
    widths: list[float] = []
    by_prompt: dict[str, int] = {}
    detections = None
    blocked = []
    for call in calls:
        call_statuses.setdefault(call.primitive, []).append(call.status)
        if call.primitive.startswith("close_gripper"):
            width = _gripper_width(call)
            if width is not None:
                widths.append(width)
        elif call.primitive.startswith("segment_"):
            count = _detection_count(call)
            if count is not None:
                detections = count
                prompt = call.args.get("text_prompt") if isinstance(call.args, dict) else None
                if isinstance(prompt, str):
                    by_prompt[prompt] = count
        if call.status in BLOCKING_STATUSES and call.message:
            blocked.append(call.message)
    signals = {
        "episode_status": status,
        "statuses": list(dict.fromkeys(statuses)),
        "primitives": list(dict.fromkeys(c.primitive for c in failed)),
        "call_statuses": call_statuses,
        "gripper_widths_m": widths,
        "gripper_width_m": widths[-1] if widths else None,
        "detections": detections,
        "detections_by_prompt": by_prompt,
        "blocked_by": blocked,
        "error": error or "",
        "exception": error.split(":", 1)[0] if error else "",
    }
    return {key: value for key, value in signals.items() if value not in (None, "", [], {})}


def failed_call_statuses(signals: dict) -> list[str]:
    """The statuses of the calls that did not end OK, sorted, without the episode's own status (which
    ``statuses`` adds after them)."""
    return sorted({s for per_call in signals.get("call_statuses", {}).values() for s in per_call if s != st.OK})


def _artifact(call, name: str):
    artifacts = getattr(call, "artifacts", None)
    return artifacts.get(name) if isinstance(artifacts, dict) else None


def _gripper_width(call) -> float | None:
    recorded = _artifact(call, "gripper")
    if isinstance(recorded, dict):
        width = recorded.get("width_m")
    else:
        width = call.result
    return float(width) if isinstance(width, (int, float)) and not isinstance(width, bool) else None


def _detection_count(call) -> int | None:
    recorded = _artifact(call, "detections")
    found = recorded if isinstance(recorded, list) else call.result
    return len(found) if isinstance(found, list) else None
