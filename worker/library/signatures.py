"""Failure signatures: the trace signals that reveal a failure, as a skill declares them, and matching
them to what an episode showed.

A skill's ``trace_signals`` (all keys optional)::

    {"statuses": ["GRASP_EMPTY"],          # call or episode statuses (worker.robot.status)
     "primitives": ["close_gripper"],      # the calls where the failure shows
     "gripper_width_m": [0.0, 0.005],      # closing width range that reveals it, metres
     "detections": [0, 0],                 # perception result sizes (number of detections)
     "error_contains": ["pre-grasp"]}      # case-insensitive fragments of the episode error

Observed signals are the dict of worker.library.signals.extract_signals (one key set for the search and
the library); a signature is matched on its ``MATCHED_KEYS``::

    {"statuses": [...], "primitives": [...], "gripper_width_m": 0.001, "detections": 0, "error": "..."}

``normalise_signature`` checks a signature before it is stored; ``read_signature`` reads one as agents
and older rows hold it (beside a symptom, or nested under ``signals``) without refusing it. Plain
Python, no Django: the offline agent and the skills app's retrieval index use the same functions.
"""

from __future__ import annotations

import math

from worker.robot import status as st

from .signals import MATCHED_KEYS, SIGNAL_KEYS

SIGNATURE_KEYS = ("statuses", "primitives", "gripper_width_m", "detections", "error_contains")


class SignalsError(ValueError):
    """Signals that do not have the documented shape; the message names the key."""


def _str_list(value, key: str, upper: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SignalsError(f"{key} must be a list of non-empty strings")
    out = [v.strip().upper() if upper else v.strip() for v in value]
    return sorted(set(out), key=out.index)


def _range(value, key: str, lo_limit: float, hi_limit: float) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SignalsError(f"{key} must be a [min, max] pair")
    try:
        lo, hi = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise SignalsError(f"{key} must hold two numbers") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or lo < lo_limit or hi > hi_limit:
        raise SignalsError(f"{key} must satisfy {lo_limit} <= min <= max <= {hi_limit}")
    return [lo, hi]


def _number(value, key: str, kind: type):
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SignalsError(f"{key} must be a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise SignalsError(f"{key} must be finite")
    return number


def _error_text(value) -> str:
    if not isinstance(value, str):
        raise SignalsError("error must be a string")
    return value[:2000]


#: The shape rule of each signature key: the canonical value, or SignalsError.
_SIGNATURE_RULES = {
    "statuses": lambda v: _str_list(v, "statuses", upper=True),
    "primitives": lambda v: _str_list(v, "primitives"),
    "gripper_width_m": lambda v: _range(v, "gripper_width_m", 0.0, 0.2),
    "detections": lambda v: [int(x) for x in _range(v, "detections", 0, 1000)],
    "error_contains": lambda v: _str_list(v, "error_contains"),
}


#: The shape rule of each observed key a signature is matched on (MATCHED_KEYS).
_OBSERVED_RULES = {
    "statuses": lambda v: _str_list(v, "statuses", upper=True),
    "primitives": lambda v: _str_list(v, "primitives"),
    "gripper_width_m": lambda v: _number(v, "gripper_width_m", float),
    "detections": lambda v: _number(v, "detections", int),
    "error": _error_text,
}


def _given(key: str, value) -> bool:
    """Whether a signature or an observation gives ``key``: a number or range when not None, a list or
    text when not empty."""
    return value is not None if key in ("gripper_width_m", "detections") else bool(value)


def normalise_signature(raw) -> dict:
    """Validate a skill's ``trace_signals`` and return it in canonical form; raises SignalsError.

    Status codes are upper-cased and must be known (worker.robot.status.MESSAGES); ranges are
    [min, max] numbers (gripper width in metres, 0..0.2; detections 0..1000).
    """
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise SignalsError("the failure signature must be a mapping")
    unknown = set(raw) - set(SIGNATURE_KEYS)
    if unknown:
        raise SignalsError(f"unknown failure-signature keys {sorted(unknown)}; known: {', '.join(SIGNATURE_KEYS)}")
    out = {key: _SIGNATURE_RULES[key](raw[key]) for key in SIGNATURE_KEYS if _given(key, raw.get(key))}
    bad = [s for s in out.get("statuses", []) if s not in st.MESSAGES]
    if bad:
        raise SignalsError(f"unknown status codes {bad}; known: {', '.join(sorted(st.MESSAGES))}")
    return out


def read_signature(raw) -> dict:
    """The signature keys of a failure signature as it is read back: a skill's stored ``trace_signals``,
    or the ``failure_signature`` agents exchange (a symptom and notes beside the signals, or the signals
    nested under ``signals``). Never raises: other keys and values that break a shape rule are left out;
    status codes are upper-cased but not checked (an unknown one simply never matches)."""
    if not isinstance(raw, dict):
        return {}
    nested = raw.get("signals") if isinstance(raw.get("signals"), dict) else {}
    out = {}
    for key, rule in _SIGNATURE_RULES.items():
        value = raw.get(key) if _given(key, raw.get(key)) else nested.get(key)
        if _given(key, value):
            try:
                out[key] = rule(value)
            except SignalsError:
                continue
    return out


def normalise_observed(raw) -> dict:
    """Validate observed signals (the keys of worker.library.signals) and return the ones a signature
    is matched on (``MATCHED_KEYS``); raises SignalsError for an unknown key or a malformed value."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise SignalsError("observed signals must be a mapping")
    unknown = set(raw) - set(SIGNAL_KEYS)
    if unknown:
        raise SignalsError(f"unknown signal keys {sorted(unknown)}; known: {', '.join(SIGNAL_KEYS)}")
    return {key: _OBSERVED_RULES[key](raw[key]) for key in MATCHED_KEYS if _given(key, raw.get(key))}


def describe_signals(signals: dict) -> str:
    """Words for the signals, for embedding and BM25 (status codes with their meanings)."""
    if not signals:
        return ""
    parts = []
    for code in signals.get("statuses", []):
        parts.append(f"{code}: {st.message(code)}.")
    if signals.get("primitives"):
        parts.append("in calls " + ", ".join(signals["primitives"]) + ".")
    width = signals.get("gripper_width_m")
    if width is not None:
        lo, hi = (width, width) if not isinstance(width, list) else width
        closed_on_nothing = " (closed on nothing)." if hi < 0.005 else "."
        parts.append(f"gripper width {lo * 1000:.0f}-{hi * 1000:.0f} mm" + closed_on_nothing)
    det = signals.get("detections")
    if det is not None:
        lo, hi = (det, det) if not isinstance(det, list) else det
        parts.append("no detections from perception." if hi == 0 else f"{lo}-{hi} perception detections.")
    for fragment in signals.get("error_contains", []):
        parts.append(f"error mentions {fragment!r}.")
    if signals.get("error"):
        parts.append(f"error: {signals['error'][:300]}")
    return " ".join(parts)


def match_signature(signature: dict, observed: dict, keys=SIGNATURE_KEYS) -> float:
    """How much of a skill's failure signature the observed signals show: a fraction in [0, 1].

    Each declared signature key among ``keys`` counts once: statuses/primitives match on any overlap,
    ranges when the observed value lies inside, error fragments when any appears in the observed error.
    An empty signature (or no observation) scores 0.
    """
    declared = [key for key in keys if key in signature] if signature and observed else []
    if not declared:
        return 0.0
    hits = 0
    for key in declared:
        if key in ("statuses", "primitives"):
            hits += bool(set(signature[key]) & set(observed.get(key, ())))
        elif key == "error_contains":
            error = observed.get("error", "").lower()
            hits += any(fragment.lower() in error for fragment in signature[key]) if error else 0
        else:
            value = observed.get(key)
            lo, hi = signature[key]
            hits += value is not None and lo <= value <= hi
    return hits / len(declared)


def signature_applies(signature: dict, observed: list[dict]) -> bool:
    """Whether a skill fits these failures (the observed signals of each failed episode) well enough to
    try it: the status codes are what a signature is about, so a signature that names some applies
    when one of them shows in a failure; one that names none is not ruled out."""
    if not signature.get("statuses"):
        return True
    return any(match_signature(signature, signals, keys=("statuses",)) > 0 for signals in observed)
