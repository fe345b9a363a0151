"""Failure signatures: the trace signals that reveal a failure, on a skill and in an observed episode.

A skill's ``trace_signals`` (all keys optional)::

    {"statuses": ["GRASP_EMPTY"],          # call or episode statuses (worker.robot.status)
     "primitives": ["close_gripper"],      # the calls where the failure shows
     "gripper_width_m": [0.0, 0.005],      # closing width range that reveals it, metres
     "detections": [0, 0],                 # perception result sizes (number of detections)
     "error_contains": ["pre-grasp"]}      # case-insensitive fragments of the episode error

Observed signals (what a failed episode shows; ``signals_from_episode`` in skills.services builds them)::

    {"statuses": [...], "primitives": [...], "gripper_width_m": 0.001, "detections": 0, "error": "..."}

Plain Python: the offline agent and the retrieval index use these without Django.
"""

from __future__ import annotations

import math

from worker.robot import status as st

SIGNATURE_KEYS = ("statuses", "primitives", "gripper_width_m", "detections", "error_contains")
OBSERVED_KEYS = ("statuses", "primitives", "gripper_width_m", "detections", "error")


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


def _common(raw, keys: tuple[str, ...], what: str, key_words: str) -> dict:
    """The checks both shapes share: a mapping of known keys; statuses and primitives as lists."""
    if not isinstance(raw, dict):
        raise SignalsError(f"{what} must be a mapping")
    unknown = set(raw) - set(keys)
    if unknown:
        raise SignalsError(f"unknown {key_words} {sorted(unknown)}; known: {', '.join(keys)}")
    out: dict = {}
    if raw.get("statuses"):
        out["statuses"] = _str_list(raw["statuses"], "statuses", upper=True)
    if raw.get("primitives"):
        out["primitives"] = _str_list(raw["primitives"], "primitives")
    return out


def normalise_signature(raw) -> dict:
    """Validate a skill's ``trace_signals`` and return it in canonical form; raises SignalsError.

    Status codes are upper-cased and must be known (worker.robot.status.MESSAGES); ranges are
    [min, max] numbers (gripper width in metres, 0..0.2; detections 0..1000).
    """
    if raw in (None, ""):
        return {}
    out = _common(raw, SIGNATURE_KEYS, "the failure signature", "failure-signature keys")
    bad = [s for s in out.get("statuses", []) if s not in st.MESSAGES]
    if bad:
        raise SignalsError(f"unknown status codes {bad}; known: {', '.join(sorted(st.MESSAGES))}")
    if raw.get("gripper_width_m") is not None:
        out["gripper_width_m"] = _range(raw["gripper_width_m"], "gripper_width_m", 0.0, 0.2)
    if raw.get("detections") is not None:
        out["detections"] = [int(v) for v in _range(raw["detections"], "detections", 0, 1000)]
    if raw.get("error_contains"):
        out["error_contains"] = _str_list(raw["error_contains"], "error_contains")
    return out


def normalise_observed(raw) -> dict:
    """Validate observed signals (see module docstring); raises SignalsError."""
    if raw in (None, ""):
        return {}
    out = _common(raw, OBSERVED_KEYS, "observed signals", "signal keys")
    for key, kind in (("gripper_width_m", float), ("detections", int)):
        if raw.get(key) is not None:
            try:
                value = kind(raw[key])
            except (TypeError, ValueError):
                raise SignalsError(f"{key} must be a number") from None
            if isinstance(value, float) and not math.isfinite(value):
                raise SignalsError(f"{key} must be finite")
            out[key] = value
    if raw.get("error"):
        if not isinstance(raw["error"], str):
            raise SignalsError("error must be a string")
        out["error"] = raw["error"][:2000]
    return out


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
        parts.append(f"gripper width {lo * 1000:.0f}-{hi * 1000:.0f} mm" + (" (closed on nothing)." if hi < 0.005 else "."))
    det = signals.get("detections")
    if det is not None:
        lo, hi = (det, det) if not isinstance(det, list) else det
        parts.append("no detections from perception." if hi == 0 else f"{lo}-{hi} perception detections.")
    for fragment in signals.get("error_contains", []):
        parts.append(f"error mentions {fragment!r}.")
    if signals.get("error"):
        parts.append(f"error: {signals['error'][:300]}")
    return " ".join(parts)


def match_signature(signature: dict, observed: dict) -> float:
    """How much of a skill's failure signature the observed signals show: a fraction in [0, 1].

    Each declared signature key counts once: statuses/primitives match on any overlap, ranges when the
    observed value lies inside, error fragments when any appears in the observed error. An empty
    signature (or no observation) scores 0.
    """
    if not signature or not observed:
        return 0.0
    hits = 0
    for key in SIGNATURE_KEYS:
        if key not in signature:
            continue
        if key in ("statuses", "primitives"):
            hits += bool(set(signature[key]) & set(observed.get(key, ())))
        elif key == "error_contains":
            error = observed.get("error", "").lower()
            hits += any(fragment.lower() in error for fragment in signature[key]) if error else 0
        else:
            value = observed.get(key)
            lo, hi = signature[key]
            hits += value is not None and lo <= value <= hi
    declared = sum(1 for key in SIGNATURE_KEYS if key in signature)
    return hits / declared
