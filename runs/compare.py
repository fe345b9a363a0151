"""Comparing two candidates: their programs side by side, their outcomes per seed, and one seed's two
traces aligned call by call (the compare page)."""

from __future__ import annotations

import difflib
import math

from .models import Candidate


def code_diff(a: str, b: str, context: int = 3) -> list[dict]:
    """Side-by-side rows ``{"op", "a_no", "a", "b_no", "b"}``; op is equal | replace | delete | insert |
    skip (a run of unchanged lines folded away, ``a`` says how many)."""
    al, bl = a.splitlines(), b.splitlines()
    rows = []
    for group in difflib.SequenceMatcher(None, al, bl, autojunk=False).get_grouped_opcodes(context):
        if rows:
            rows.append({"op": "skip"})
        for op, i1, i2, j1, j2 in group:
            n = max(i2 - i1, j2 - j1)
            for k in range(n):
                ai, bj = i1 + k, j1 + k
                rows.append(
                    {
                        "op": op,
                        "a_no": ai + 1 if ai < i2 else None,
                        "a": al[ai] if ai < i2 else None,
                        "b_no": bj + 1 if bj < j2 else None,
                        "b": bl[bj] if bj < j2 else None,
                    }
                )
    return rows


def seed_outcomes(a: Candidate, b: Candidate) -> list[dict]:
    """Per seed (and split): both episodes and how the outcome changed: fixed | broken | same | only-a | only-b."""

    def index(c):
        return {(e.split, e.seed): e for e in c.episodes.all()}

    ea, eb = index(a), index(b)
    rows = []
    for key in sorted(set(ea) | set(eb), key=lambda k: (k[0], k[1])):
        x, y = ea.get(key), eb.get(key)
        if x is None or y is None:
            change = "only-a" if y is None else "only-b"
        elif bool(x.success) == bool(y.success):
            change = "same"
        else:
            change = "fixed" if y.success else "broken"
        rows.append({"split": key[0], "seed": key[1], "a": x, "b": y, "change": change})
    return rows


def _call_key(call) -> str:
    return call.primitive


#: Numbers closer than this (absolute, or relative to the larger) count as the same: two runs of one
#: program differ in the last digits of every float (planner randomness, perception noise); a changed
#: argument (an offset of 2 cm, another prompt) is far outside it.
ABS_TOL = 1e-4
REL_TOL = 1e-3


def values_differ(x, y, abs_tol: float = ABS_TOL, rel_tol: float = REL_TOL) -> bool:
    """Whether two recorded values (JSON: numbers, strings, lists, dicts, array summaries) differ beyond
    the numeric tolerance. Booleans and strings compare exactly; dicts by their keys and values."""
    if isinstance(x, bool) or isinstance(y, bool):
        return x is not y if isinstance(x, bool) and isinstance(y, bool) else True
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return not math.isclose(float(x), float(y), rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(x, dict) and isinstance(y, dict):
        return set(x) != set(y) or any(values_differ(x[k], y[k], abs_tol, rel_tol) for k in x)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) != len(y) or any(values_differ(a, b, abs_tol, rel_tol) for a, b in zip(x, y))
    return x != y


def changed_keys(x, y) -> list[str]:
    """Top-level keys (arguments, result fields) whose values differ beyond the tolerance; a result that
    is not a dict on both sides is one value, named "result"."""
    if isinstance(x, dict) and isinstance(y, dict):
        return sorted(k for k in set(x) | set(y) if k not in x or k not in y or values_differ(x[k], y[k]))
    return ["result"] if values_differ(x, y) else []


def align_calls(a_calls: list, b_calls: list) -> tuple[list[dict], int | None]:
    """Align two traces call by call (by primitive, keeping order), returning rows ``{"a", "b", "diff",
    "changed_args", "changed_result"}`` and the index of the first divergence: the first row whose
    primitive, status, arguments or result differ beyond the numeric tolerance (:func:`values_differ`), in
    the order the calls were made. ``diff`` names the first way the row differs: "missing" (one side has
    no call), "status", "args", "result", or "" (the same)."""
    rows = []
    sm = difflib.SequenceMatcher(None, [_call_key(c) for c in a_calls], [_call_key(c) for c in b_calls], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            pairs = zip(a_calls[i1:i2], b_calls[j1:j2])
        else:
            n = max(i2 - i1, j2 - j1)
            pairs = (
                (a_calls[i1 + k] if i1 + k < i2 else None, b_calls[j1 + k] if j1 + k < j2 else None) for k in range(n)
            )
        for x, y in pairs:
            changed_args, changed_result = [], []
            if x is None or y is None:
                diff = "missing"
            elif x.primitive != y.primitive or x.status != y.status:
                diff = "status"
            else:
                changed_args = changed_keys(x.args or {}, y.args or {})
                changed_result = changed_keys(x.result, y.result)
                diff = "args" if changed_args else "result" if changed_result else ""
            if diff == "status" and x.primitive == y.primitive:
                changed_args = changed_keys(x.args or {}, y.args or {})
            rows.append({"a": x, "b": y, "diff": diff, "changed_args": changed_args, "changed_result": changed_result})
    first = next((i for i, r in enumerate(rows) if r["diff"]), None)
    return rows, first


def frames_at(call, calls: list) -> list:
    """The camera frames to show for a call: its own keyframes, else the first ones written after it in
    its episode (a call that records none, such as solve_ik, is judged by what the robot did next)."""
    if call is None:
        return []
    own = list(call.keyframes.all())
    if own:
        return own
    for later in calls:
        if later.seq > call.seq:
            found = list(later.keyframes.all())
            if found:
                return found
    return []


def candidate_task(candidate: Candidate):
    """The task a candidate's program solves: its actor's in an experiment, else its run's."""
    actor = getattr(candidate, "actor", None)
    return actor.task if actor is not None else candidate.run.task
