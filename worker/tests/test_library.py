"""worker.library without Django or a database: one failure-signal extractor feeds the search and skill
signatures with the same keys; signatures read in older shapes; sketches filled for a program."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from worker.library.signals import MATCHED_KEYS, SIGNAL_KEYS, extract_signals, failed_call_statuses
from worker.library.signatures import (
    SignalsError,
    match_signature,
    normalise_observed,
    normalise_signature,
    read_signature,
    signature_applies,
)
from worker.library.sketch import SketchError, declare_from_constants, fill_for_program, placeholder
from worker.search.core import CallSummary, trace_signals

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = (
    "the target configuration is in occupied space: arm0 right finger would meet occupied space at "
    "[0.031, 0.087, 0.871] m, seen by camera agentview, 0.043 m above the support surface"
)
ERROR = "RuntimeError: grasp missed the red cube"


def search_calls():
    """A failed grasp as the search reads it (CallSummary: values in ``result``)."""
    return [
        CallSummary(
            1,
            1,
            "segment_text_prompt",
            "OK",
            12,
            args={"text_prompt": "red cube"},
            result=[{"label": "red cube"}, {"label": "red cube"}],
        ),
        CallSummary(2, 2, "segment_text_prompt", "NO_DETECTION", 14, args={"text_prompt": "green cube"}, result=[]),
        CallSummary(3, 3, "move_to_pose", "PLANNING_ERROR", 20, message=BLOCKED, result="PLANNING_ERROR"),
        CallSummary(4, 4, "move_to_pose", "OK", 21, result="REACHED"),
        CallSummary(5, 5, "close_gripper", "GRASP_EMPTY", 22, result=0.0012),
    ]


def stored_calls():
    """The same calls as the database keeps them (PrimitiveCall rows: the engine's artifacts beside the
    summarised result)."""
    artifacts = [
        {"detections": [{"label": "red cube"}, {"label": "red cube"}]},
        {"detections": []},
        {},
        {},
        {"gripper": {"width_m": 0.0012, "closed": True}},
    ]
    return [
        SimpleNamespace(
            primitive=c.primitive,
            status=c.status,
            message=c.message,
            args=c.args,
            result=None,
            line=c.line,
            artifacts=a,
        )
        for c, a in zip(search_calls(), artifacts)
    ]


def test_one_extractor_gives_the_search_and_the_signatures_the_same_keys():
    searched = trace_signals(search_calls(), "EXCEPTION", ERROR)
    assert searched == extract_signals(search_calls(), "EXCEPTION", ERROR)
    assert set(searched) <= set(SIGNAL_KEYS) and set(MATCHED_KEYS) <= set(searched)
    assert searched["statuses"] == ["NO_DETECTION", "PLANNING_ERROR", "GRASP_EMPTY", "EXCEPTION"]
    assert searched["primitives"] == ["segment_text_prompt", "move_to_pose", "close_gripper"]
    assert searched["call_statuses"]["move_to_pose"] == ["PLANNING_ERROR", "OK"]
    assert searched["gripper_widths_m"] == [0.0012] and searched["gripper_width_m"] == 0.0012
    assert searched["detections"] == 0 and searched["detections_by_prompt"] == {"red cube": 2, "green cube": 0}
    assert searched["blocked_by"] == [BLOCKED] and searched["exception"] == "RuntimeError"
    assert failed_call_statuses(searched) == ["GRASP_EMPTY", "NO_DETECTION", "PLANNING_ERROR"]

    # What a signature is matched on is the same whether the trace came from the search or the database.
    observed = normalise_observed(searched)
    assert observed == {key: searched[key] for key in MATCHED_KEYS}
    assert normalise_observed(extract_signals(stored_calls(), "EXCEPTION", ERROR)) == observed
    signature = normalise_signature(
        {"statuses": ["grasp_empty"], "gripper_width_m": [0, 0.005], "detections": [1, 3], "error_contains": ["MISSED"]}
    )
    assert match_signature(signature, observed) == pytest.approx(3 / 4)  # all but the detection count
    assert match_signature(signature, observed, keys=("statuses",)) == 1.0


def test_a_passing_or_running_episode_adds_no_status_of_its_own():
    calls = [CallSummary(1, 1, "close_gripper", "OK", 5, result=0.04)]
    assert extract_signals(calls, "OK") == {
        "episode_status": "OK",
        "call_statuses": {"close_gripper": ["OK"]},
        "gripper_widths_m": [0.04],
        "gripper_width_m": 0.04,
    }
    assert "statuses" not in extract_signals([], "RUNNING")
    with pytest.raises(SignalsError, match="unknown signal keys"):
        normalise_observed({"close_widths": [0.01]})


def test_signatures_are_read_in_the_shapes_agents_and_older_rows_hold_them():
    agent_shape = {"symptom": "the fingers close on air", "blocked_by": ["x"], "statuses": ["grasp_empty"]}
    assert read_signature(agent_shape) == {"statuses": ["GRASP_EMPTY"]}
    assert read_signature({"signals": {"statuses": ["IK_FAILED"], "gripper_width_m": [0, 0.005]}}) == {
        "statuses": ["IK_FAILED"],
        "gripper_width_m": [0.0, 0.005],
    }
    assert read_signature({"statuses": "NOT_A_CODE", "detections": "many"}) == {"statuses": ["NOT_A_CODE"]}
    assert read_signature("free text") == {}

    failures = [extract_signals(search_calls(), "EXCEPTION", ERROR), extract_signals([], "TIMEOUT")]
    assert signature_applies(read_signature(agent_shape), failures)
    assert signature_applies({"statuses": ["TIMEOUT"]}, failures)
    assert not signature_applies({"statuses": ["IK_FAILED"], "primitives": ["close_gripper"]}, failures)
    assert signature_applies({"primitives": ["solve_ik"]}, failures)  # names no status: not ruled out


def test_a_sketch_is_filled_for_a_program_from_its_constants_then_the_defaults():
    sketch = f"HEIGHT = {placeholder('HEIGHT')}\nPROMPT = {{{{ PROMPT }}}}\nDEPTH = {placeholder('DEPTH')}"
    declared = {"HEIGHT": {"default": 0.1, "doc": "m"}, "PROMPT": "cube"}
    assert fill_for_program(sketch, declared, {"HEIGHT": 0.25, "DEPTH": 0.02, "OTHER": 1}) == (
        "HEIGHT = 0.25\nPROMPT = 'cube'\nDEPTH = 0.02"
    )
    with pytest.raises(SketchError, match="DEPTH"):
        fill_for_program(sketch, declared, {})
    assert declare_from_constants(sketch, declared, {"DEPTH": 0.02, "OTHER": 1}, "from the program") == {
        **declared,
        "DEPTH": {"default": 0.02, "doc": "from the program"},
    }


def test_the_library_imports_no_django():
    code = (
        "import sys; import worker.library.signals, worker.library.signatures, worker.library.sketch, "
        "worker.agents.offline; "
        "sys.exit(any(m.split('.')[0] in ('django', 'rest_framework') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
