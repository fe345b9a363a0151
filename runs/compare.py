"""Comparing two candidates: their programs side by side, their outcomes per seed, and one seed's two
traces aligned call by call (the compare page)."""

from __future__ import annotations

import difflib

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


def align_calls(a_calls: list, b_calls: list) -> tuple[list[dict], int | None]:
    """Align two traces call by call (by primitive, keeping order), returning rows ``{"a", "b", "diff"}``
    and the index of the first row that diverges. ``diff`` is "" (same primitive, status and args),
    "args" (same primitive and status, other arguments), "status", or "missing" (one side has no call)."""
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
            if x is None or y is None or x.primitive != y.primitive:
                diff = "missing" if (x is None or y is None) else "status"
            elif x.status != y.status:
                diff = "status"
            elif x.args != y.args:
                diff = "args"
            else:
                diff = ""
            changed = []
            if diff == "args":
                changed = sorted(k for k in set(x.args) | set(y.args) if x.args.get(k) != y.args.get(k))
            rows.append({"a": x, "b": y, "diff": diff, "changed_args": changed})
    first = next((i for i, r in enumerate(rows) if r["diff"] in ("missing", "status")), None)
    if first is None:
        first = next((i for i, r in enumerate(rows) if r["diff"]), None)
    return rows, first
