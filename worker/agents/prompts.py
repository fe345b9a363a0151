"""What language-model agents are told. The API reference comes from the primitives' own docstrings
(worker.robot.api.api_reference_markdown), never from a second copy kept by hand.

The system prompt is the stable prefix (rules, API reference, retrieved skills) that prompt caching
reuses across a task's rounds; everything round-specific goes in the first user message.
"""

from __future__ import annotations

from worker.robot.api import api_reference_markdown
from worker.search.core import Brief, CandidateRecord

RULES = """You write robot control programs in Python for a simulated robot, see why they fail from their
execution traces, and repair them. A program runs in a sandbox holding only the robot API functions
listed below, numpy as np and math: no imports, no files, no network, no dunder attributes. The
simulator's ground truth (object poses, model files, simulator objects) is out of reach by design:
programs perceive through the cameras only, and any attempt ends the episode with POLICY_VIOLATION.
Every API call is traced with its arguments, result, status (OK, NO_DETECTION, IK_FAILED,
PLANNING_ERROR, COLLISION, NOT_REACHED, GRASP_EMPTY, BAD_ARGUMENT ...) and keyframe images; read the
calls a failure implicates before changing code, and state each candidate's hypothesis plainly."""


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
        lines.append(f"failed seed {ep.seed} (episode {ep.ref}): {ep.status} {ep.error}".rstrip())
        lines.extend(f"  {call.one_line()}  [call {call.ref}]" for call in ep.implicated[:8])
    if len(c.failed) > max_failures:
        lines.append(f"... and {len(c.failed) - max_failures} more failed seeds (list_calls reads any episode)")
    return "\n".join(lines)


def round_message(brief: Brief, experiment_budget: int) -> str:
    want = "exactly one repaired program" if brief.mode == "fix_loop" else f"{brief.k} candidate programs"
    head = [
        f"Task {brief.task_key}: {brief.instruction}",
        f"Arms: {brief.arms}. Cameras: {', '.join(brief.cameras)}. Debug seeds: "
        f"{brief.debug_seeds[0]}-{brief.debug_seeds[-1]}.",
        f"Round {brief.round}. Submit {want} with submit_candidates; each needs a hypothesis that "
        "differs from the others'.",
        f"You may test ideas with run_candidate on a few seeds first (budget: {experiment_budget} "
        "episodes this round).",
    ]
    if brief.round == 0:
        head.append(
            "There are no programs yet."
            + (" The task has a reference program:\n```python\n" + brief.starter + "\n```" if brief.starter else "")
        )
        # The fix loop's first step: look at one debug seed's scene before writing anything.
        head.append(
            f"Observe the scene first: run_candidate a short program on seed {brief.debug_seeds[0]} that calls "
            "get_observation and segment_text_prompt for the objects the instruction names, then get_keyframe "
            "on those calls to see the camera image and the masks."
        )
    else:
        head.append("The best programs so far and the calls their failures implicate:")
        head.extend(_candidate_block(c) for c in brief.survivors)
        if brief.eliminated:
            head.append(
                "Hypotheses already tried that did not beat their parent:\n"
                + "\n".join(f"- {e}" for e in brief.eliminated)
            )
    head.append("When a repair generalises, describe it with propose_skill so the coordinator can validate it.")
    return "\n\n".join(head)
