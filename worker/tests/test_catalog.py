"""The task catalog: robosuite tasks, LIBERO and LIBERO-Pro suites from the package, seed splits."""

from pathlib import Path

import pytest

from worker.sim import catalog
from worker.sim.libero_catalog import PRO_SUITES, bddl_language


def test_the_robosuite_tasks_are_registered_with_their_arms_and_cameras():
    for name in ("Lift", "Stack", "PickPlaceCan", "NutAssemblySquare", "Wipe", "TwoArmLift", "TwoArmHandover"):
        spec = catalog.get_task(f"robosuite:{name}")
        assert spec.heldout_seeds == tuple(range(1, 101)) and spec.debug_seeds == tuple(range(101, 126))
        assert spec.arms == (2 if name.startswith("TwoArm") else 1)
        assert spec.keyframe_camera in spec.cameras


def test_the_libero_suites_come_from_the_benchmark_package():
    tasks = [t for t in catalog.all_tasks() if t.benchmark == "libero"]
    suites = {t.suite for t in tasks}
    assert {"libero_90", "libero_10", "libero_goal", "libero_object", "libero_spatial"} <= suites
    assert sum(t.suite == "libero_90" for t in tasks) == 90
    assert set(PRO_SUITES) & suites, "LIBERO-Pro perturbation suites"
    for t in tasks:
        assert t.heldout_seeds == tuple(range(1, 51)) and t.debug_seeds == tuple(range(51, 66))
        assert Path(t.extra["bddl"]).is_file() and Path(t.extra["init_states"]).is_file()


def test_perturbed_instructions_come_from_the_task_definition_not_the_file_name():
    # LIBERO-Pro's _task suites change the goal and _lan suites paraphrase it; the file name does not.
    changed = 0
    for t in catalog.all_tasks():
        if t.suite.endswith(("_task", "_lan")):
            assert t.instruction == bddl_language(t.extra["bddl"])
            changed += t.instruction.lower() != t.name.replace("_", " ").lower()
    assert changed > 10
    assert catalog.get_task("libero:libero_goal_task/0").instruction == "open the bottom drawer of the cabinet"


def test_index_aliases_and_unknown_keys():
    assert (
        catalog.get_task("libero:libero_90/0").key
        == "libero:libero_90/KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet"
    )
    with pytest.raises(KeyError, match="unknown task"):
        catalog.get_task("robosuite:Nope")
    with pytest.raises(KeyError, match="unknown task"):
        catalog.get_task("libero:libero_90/NOPE")


@pytest.mark.parametrize("text, seeds", [("101-103", [101, 102, 103]), ("1,4,9", [1, 4, 9]), ("1-3,7", [1, 2, 3, 7])])
def test_seed_lists_parse(text, seeds):
    assert catalog.parse_seeds(text) == seeds
    assert catalog.parse_seeds(catalog.format_seeds(seeds)) == seeds


@pytest.mark.parametrize("text", ["", "a", "5-1", "1,,2", "-3", "1-3,2", "4294967296"])
def test_bad_seed_lists_are_refused(text):
    with pytest.raises(ValueError):
        catalog.parse_seeds(text)
