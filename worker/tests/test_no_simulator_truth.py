"""What a camera-only program and its agent see in the default (realistic) perception mode contains no
simulator truth: every reference program, run on a real simulator, leaves a trace (messages, args,
results, artifacts, errors, output) and an agent-facing failure summary (worker.search.core.trace_signals)
with no simulator body, geom or joint identifier, and every label a text prompt returns is the prompt.

Identifiers are the model's names that contain "_" or a digit (``cubeB_main``, ``gripper0_finger2``,
``robot0_link7``, ``wooden_cabinet_1_top``): plain words that a model also uses as names ("table",
"floor") are ordinary language a program may say itself (its own prompts), not leaked truth.
"""

import json
import re
from pathlib import Path

import mujoco
import pytest

from worker.engine import EngineSettings, run_episode, simulators
from worker.events import MemorySink
from worker.search.core import trace_signals
from worker.search.local import summarize_call
from worker.sim.catalog import all_tasks

pytestmark = pytest.mark.slow

REFERENCE = [spec for spec in all_tasks() if spec.starter_program]
IDENTIFIER = re.compile(r"[_0-9]")


def simulator_identifiers(spec) -> set[str]:
    """Every body, geom and joint name of the task's MuJoCo model that is an identifier."""
    adapter, *_ = simulators().get(spec)
    model = adapter.sim.model._model
    names = set()
    for kind, count in (
        (mujoco.mjtObj.mjOBJ_BODY, model.nbody),
        (mujoco.mjtObj.mjOBJ_GEOM, model.ngeom),
        (mujoco.mjtObj.mjOBJ_JOINT, model.njnt),
    ):
        names |= {n for n in (mujoco.mj_id2name(model, kind, i) for i in range(count)) if n and IDENTIFIER.search(n)}
    return names


@pytest.mark.parametrize("spec", REFERENCE, ids=[s.key for s in REFERENCE])
def test_a_reference_episode_leaves_no_simulator_identifier_anywhere_a_program_or_agent_reads(spec):
    program = (Path(__file__).resolve().parents[1] / "programs" / spec.starter_program).read_text()
    # A failing seed says more than a passing one; run two held-out seeds, the second one always.
    sink = MemorySink()
    results = [run_episode(spec, program, seed, sink, EngineSettings(), None) for seed in spec.heldout_seeds[:2]]
    names = simulator_identifiers(spec)
    assert len(names) > 20  # the check looks at a real scene model
    for result, episode in zip(results, sink.episodes):
        assert result.perception_mode == "realistic"
        calls = episode["calls"]
        assert calls, result.error
        summaries = [summarize_call(c.seq, c) for c in calls]
        signals = trace_signals(summaries, result.status, result.error)
        agent_view = "\n".join(s.one_line() for s in summaries)
        texts = {
            "signals": json.dumps(signals, default=str),
            "agent view": agent_view,
            "error": result.error,
            "stdout": result.stdout,
            "stderr": result.stderr,
        }
        for c in calls:
            texts[f"call {c.seq} {c.primitive}"] = " ".join(
                [c.message, json.dumps([c.args, c.result, c.artifacts], default=str)]
            )
            if c.primitive in ("segment_text_prompt", "segment_sam3_text_prompt"):
                prompt = c.args.get("text_prompt")
                labels = {d.get("label") for d in c.artifacts.get("detections", []) if isinstance(d, dict)}
                assert labels <= {prompt}, (c.args, labels)
        for where, text in texts.items():
            leaked = sorted(n for n in names if n in text)
            assert not leaked, (spec.key, where, leaked, text[:400])
