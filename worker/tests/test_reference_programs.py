"""Every built-in reference program solves its task on held-out seeds (bench/reference_programs.py
measures all of them; here a few seeds each, so a regression in the API shows up in CI)."""

from pathlib import Path

import pytest

from worker.engine import EngineSettings, run_episode
from worker.events import NullSink
from worker.sim.catalog import all_tasks

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
REFERENCE = sorted((s for s in all_tasks() if s.starter_program), key=lambda s: s.key)


def test_there_are_reference_programs_for_robosuite_and_libero():
    keys = {s.key for s in REFERENCE}
    assert {
        "robosuite:Lift",
        "robosuite:Stack",
        "robosuite:PickPlaceCan",
        "robosuite:TwoArmLift",
        "robosuite:TwoArmHandover",
    } <= keys
    assert sum(k.startswith("libero:libero_90/") for k in keys) == 3


@pytest.mark.slow
@pytest.mark.parametrize("spec", REFERENCE, ids=[s.key.split("/")[-1] for s in REFERENCE])
def test_the_reference_program_succeeds(spec):
    program = (PROGRAMS / spec.starter_program).read_text()

    # At least 2 of 3 held-out seeds, or, when a program misses that, 4 of 6 (episodes are not fully
    # reproducible within one process: OMPL's RRTConnect is randomised and not seeded per plan, so a
    # program that needs a planned path, such as the LIBERO alphabet-soup one, can lose a seed it
    # usually wins; a regression in the API still fails both bars).
    def run(seeds):
        return [run_episode(spec, program, seed, NullSink(), EngineSettings(trace=False), None) for seed in seeds]

    results = run(list(spec.heldout_seeds)[10:13])
    if sum(r.success for r in results) < 2:
        results += run(list(spec.heldout_seeds)[13:16])
        assert sum(r.success for r in results) >= 4, [(r.seed, r.status, r.error) for r in results]
