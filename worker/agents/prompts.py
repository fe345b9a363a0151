"""What language-model agents are told. The API reference comes from the primitives' own docstrings
(worker.robot.api.api_reference_markdown), never from a second copy kept by hand.

The system prompt is the stable prefix (rules, API reference, retrieved skills) that prompt caching
reuses across a task's rounds; everything round-specific goes in the first user message.
"""

from __future__ import annotations

from worker.robot.api import api_reference_markdown
from worker.search.core import Brief, CandidateRecord

from .tools import episode_report

RULES = """You write robot control programs in Python for a simulated robot, see why they fail from their
execution traces, and repair them. A program runs in a sandbox holding only the robot API functions
listed below, numpy as np and math: no imports, no files, no network, no dunder attributes. The
simulator's ground truth (object poses, model files, simulator objects) is out of reach by design:
programs perceive through the cameras only, and any attempt ends the episode with POLICY_VIOLATION.
Every API call is traced with its arguments, result, status (OK, NO_DETECTION, IK_FAILED,
PLANNING_ERROR, COLLISION, NOT_REACHED, GRASP_EMPTY, BAD_ARGUMENT ...) and keyframe images: camera
frames at perception calls, overlays (masks, grasps, planned paths), each motion's end frame and the
final scene of every episode. Motions answer REACHED or NOT_REACHED with the pose reached; IK answers
give residuals against the solver's tolerance. run_candidate returns what your program prints (the
tail), so print the numbers you want to see. Read the calls a failure implicates and look at the
frames (get_keyframe) before changing code, and state each candidate's hypothesis plainly."""


def render_skills(skills: list[dict]) -> str:
    if not skills:
        return "(no skills retrieved for this task)"
    parts = []
    for s in skills:
        parts.append(
            f"- {s.get('name')} [{s.get('kind', '')}] (id {s.get('id', '?')}, score {s.get('score', 0):.2f})\n"
            f"  when to apply: {s.get('when_to_apply', '')}\n  repair: {s.get('repair_strategy', '')}"
        )
    return "\n".join(parts)


def system_prompt(arms: int, skills: list[dict]) -> str:
    return (
        f"{RULES}\n\n# Robot API\n\n{api_reference_markdown(arms)}\n\n"
        f"# Skills retrieved from the library\n\n{render_skills(skills)}\n"
    )


def _candidate_block(c: CandidateRecord, max_failures: int = 4) -> str:
    lines = [
        f"## candidate {c.ref} (round {c.round}): {c.outcome_line()}",
        f"hypothesis: {c.hypothesis}",
        "```python",
        c.code,
        "```",
    ]
    for ep in c.failed[:max_failures]:
        lines.extend(episode_report(ep))
    if len(c.failed) > max_failures:
        lines.append(f"... and {len(c.failed) - max_failures} more failed seeds (list_calls reads any episode)")
    return "\n".join(lines)


def round_message(brief: Brief, experiment_budget: int, max_turns: int | None = None) -> str:
    want = "exactly one repaired program" if brief.mode == "fix_loop" else f"{brief.k} candidate programs"
    seeds = f"{brief.debug_seeds[0]}-{brief.debug_seeds[-1]}" if brief.debug_seeds else "(none)"
    head = [
        f"Task {brief.task_key}: {brief.instruction}",
        f"Success condition (the benchmark's check): {brief.success_condition or 'not stated by the benchmark'}",
        f"Scene:\n{brief.scene}" if brief.scene else f"Arms: {brief.arms}. Cameras: {', '.join(brief.cameras)}.",
        f"Round {brief.round}. Debug seeds: {seeds}. Submit {want} with submit_candidates; each needs a "
        "hypothesis that differs from the others'.",
        f"Budgets this round: {experiment_budget} experiment episodes for run_candidate (one per seed)"
        + (f", {max_turns} model turns" if max_turns else "")
        + "; every tool reply says what is left.",
    ]
    if brief.notes:
        head.append(
            "Your experiments in earlier rounds (hypotheses and what they measured):\n"
            + "\n".join(f"- {n}" for n in brief.notes)
        )
    if brief.round == 0:
        head.append(
            "There are no programs yet."
            + (" The task has a reference program:\n```python\n" + brief.starter + "\n```" if brief.starter else "")
        )
        # The fix loop's first step: look at one debug seed's scene before writing anything.
        head.append(
            f"Observe the scene first: run_candidate a short program on seed {brief.debug_seeds[0]} that calls "
            "get_observation and segment_text_prompt for the objects the instruction names, prints what it "
            "measures, then get_keyframe on the frame and overlay ids those calls list to see the camera "
            "image and the masks."
        )
    else:
        head.append("The best programs so far and the calls their failures implicate:")
        head.extend(_candidate_block(c) for c in brief.survivors)
        if brief.eliminated:
            head.append(
                "Hypotheses already tried that did not beat their parent:\n"
                + "\n".join(f"- {e}" for e in brief.eliminated)
            )
    head.append(
        "When a repair generalises, describe it with propose_skill (naming the before and after candidates "
        "and the seeds it fixes) so admission can re-run and validate it after the search."
    )
    return "\n\n".join(head)
