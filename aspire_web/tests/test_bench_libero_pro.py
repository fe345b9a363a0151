"""bench/libero_pro.py: the task-selection rule, the aggregates and resuming, without the simulator (the
search is a fake; the selection test reads the installed LIBERO catalog, which loads no scene)."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import libero_pro  # noqa: E402
from worker.sim.catalog import TaskSpec  # noqa: E402


def _spec(suite: str, index: int) -> TaskSpec:
    return TaskSpec(
        key=f"libero:{suite}/task{index}",
        benchmark="libero",
        suite=suite,
        name=f"task{index}",
        instruction=f"do task {index}",
        debug_seeds=tuple(range(51, 66)),
        heldout_seeds=tuple(range(1, 51)),
        step_budget=300,
        extra={"index": index},
    )


FAKE_SPECS = tuple(_spec(s, i) for s in libero_pro.all_suites() for i in range(10))


def test_the_rule_picks_the_same_indices_from_every_suite_of_the_installed_catalog():
    from worker.sim.libero_catalog import PRO_SUITES, libero_tasks

    specs = libero_tasks()
    chosen = libero_pro.select_tasks(specs)
    suites = libero_pro.all_suites()
    assert len(suites) == 20 and set(suites) - set(libero_pro.FAMILIES.values()) == set(PRO_SUITES)
    by_suite = {s: [t for t in chosen if t.suite == s] for s in suites}
    for suite, tasks in by_suite.items():
        assert len(tasks) >= 2, suite
    for family in libero_pro.FAMILIES:
        base = by_suite[libero_pro.suite_of(family, None)]
        for perturbation in libero_pro.PERTURBATIONS:
            pro = by_suite[libero_pro.suite_of(family, perturbation)]
            # a Pro task perturbs the base task with the same index and name
            assert [(t.extra["index"], t.name) for t in pro] == [(t.extra["index"], t.name) for t in base]
    # --per-suite N extends the smaller selection; the rule reads nothing but the catalog
    more = libero_pro.select_tasks(specs, per_suite=3)
    assert {t.key for t in chosen} < {t.key for t in more}
    assert [t.key for t in libero_pro.select_tasks(specs)] == [t.key for t in chosen]


def test_families_and_suites_limit_the_selection_and_unknown_ones_are_refused():
    chosen = libero_pro.select_tasks(FAKE_SPECS, ("goal",), ["libero_goal", "libero_goal_swap"], per_suite=1)
    assert [t.key for t in chosen] == ["libero:libero_goal/task0", "libero:libero_goal_swap/task0"]
    # run order: per index, the base suite then its Pro suites, so a stopped run leaves pairs
    chosen = libero_pro.select_tasks(FAKE_SPECS, ("long",))
    assert [t.suite for t in chosen[:5]] == ["libero_10", *(f"libero_10_{p}" for p in libero_pro.PERTURBATIONS)]
    assert {t.extra["index"] for t in chosen} == {0, 5}
    with pytest.raises(ValueError, match="unknown families"):
        libero_pro.select_tasks(FAKE_SPECS, ("kitchen",))
    with pytest.raises(ValueError, match="not one of the suites"):
        libero_pro.select_tasks(FAKE_SPECS, ("goal",), ["libero_90"])
    with pytest.raises(ValueError, match="not of the selected families"):
        libero_pro.select_tasks(FAKE_SPECS, ("goal",), ["libero_object_swap"])
    with pytest.raises(ValueError, match="per_suite"):
        libero_pro.select_tasks(FAKE_SPECS, per_suite=0)


def _row(suite, index, heldout, first=0.0, final=None):
    family, perturbation = libero_pro.parse_suite(suite)
    return {
        "task": f"libero:{suite}/task{index}",
        "suite": suite,
        "family": family,
        "perturbation": perturbation,
        "index": index,
        "heldout": heldout,
        "first_candidate_debug": first,
        "final_debug": heldout if final is None else final,
    }


def test_aggregates_from_rows():
    rows = [
        _row("libero_goal", 0, 1.0, first=0.5),
        _row("libero_goal", 5, 0.6, first=0.25),
        _row("libero_goal_swap", 0, 0.5),
        _row("libero_goal_swap", 5, 0.2),
        _row("libero_goal_lan", 0, 0.9),  # index 5 not run yet: its drop pairs index 0 only
        _row("libero_object_task", 0, 0.0),  # a family with no base row
    ]
    agg = libero_pro.aggregate(rows)
    goal = agg["per_suite"]["libero_goal"]
    assert goal == {
        "family": "goal",
        "perturbation": None,
        "tasks": 2,
        "heldout_mean": 0.8,
        "first_candidate_debug_mean": 0.375,
        "final_debug_mean": 0.8,
    }
    assert agg["per_suite"]["libero_goal_lan"]["tasks"] == 1
    assert list(agg["per_suite"]) == ["libero_goal", "libero_goal_swap", "libero_goal_lan", "libero_object_task"]
    fam = agg["per_family"]["goal"]
    assert fam["base_mean"] == 0.8 and fam["base_tasks"] == 2
    assert fam["pro_mean"] == pytest.approx((0.35 + 0.9) / 2) and fam["pro_suites"] == 2 and fam["pro_tasks"] == 3
    assert fam["drop"]["swap"] == {"paired_tasks": 2, "base": 0.8, "pro": 0.35, "drop": 0.45}
    assert fam["drop"]["lan"] == {"paired_tasks": 1, "base": 1.0, "pro": 0.9, "drop": 0.1}
    assert fam["drop"]["task"] == {"paired_tasks": 0, "base": None, "pro": None, "drop": None}
    obj = agg["per_family"]["object"]
    assert obj["base_mean"] is None and obj["base_tasks"] == 0 and obj["drop"]["task"]["drop"] is None
    assert "spatial" not in agg["per_family"] and "long" not in agg["per_family"]
    # overall: the mean of suite means (not of tasks), with what it covers
    assert agg["overall"]["pro"] == {
        "heldout_mean": pytest.approx((0.35 + 0.9 + 0.0) / 3, abs=1e-4),
        "suites": 3,
        "tasks": 4,
    }
    assert agg["overall"]["base"] == {"heldout_mean": 0.8, "suites": 1, "tasks": 2}
    assert libero_pro.aggregate([])["overall"]["pro"] == {"heldout_mean": None, "suites": 0, "tasks": 0}


class _Stop(Exception):
    pass


def _fake_search(calls, stop_after=None, rates=None):
    def search(spec, k, rounds, workers, debug_limit, heldout_limit, commit):
        if stop_after is not None and len(calls) >= stop_after:
            raise _Stop  # as if the run were killed during this task
        calls.append((spec.key, k, rounds, workers, debug_limit, heldout_limit))
        heldout = (rates or {}).get(spec.suite, 0.5)
        return {
            "task": spec.key,
            "suite": spec.suite,
            "heldout": heldout,
            "first_candidate_debug": 0.0,
            "final_debug": heldout,
            "step_budget": spec.step_budget,
            "commit": commit,
        }

    return search


def test_resume_keeps_finished_rows_and_refuses_another_protocol(tmp_path):
    out = tmp_path / "lp.json"
    args = [
        "--families",
        "goal",
        "--suites",
        "libero_goal,libero_goal_swap",
        "--k",
        "1",
        "--rounds",
        "1",
        "--debug-seeds",
        "1",
        "--heldout-seeds",
        "1",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    calls = []
    with pytest.raises(_Stop):
        libero_pro.main(args, search=_fake_search(calls, stop_after=3), specs=FAKE_SPECS)
    doc = json.loads(out.read_text())  # written after every task
    assert [r["task"] for r in doc["tasks"]] == [c[0] for c in calls] and len(calls) == 3
    assert doc["not_yet_run"] == ["libero:libero_goal_swap/task5"]
    assert doc["aggregates"]["tasks"] == 3 and doc["aggregates"]["per_suite"]["libero_goal_swap"]["tasks"] == 1
    assert doc["protocol"]["published_protocol"] is False and doc["protocol"]["debug_seeds_limit"] == 1
    assert doc["seeds"] == {"debug": "51", "heldout": "1"} and doc["step_budget"] == {
        "libero_goal": 300,
        "libero_goal_swap": 300,
    }
    assert doc["tasks"][0]["family"] == "goal" and doc["tasks"][0]["perturbation"] is None
    assert doc["tasks"][1]["perturbation"] == "swap" and doc["tasks"][2]["index"] == 5

    resumed = []
    rates = {"libero_goal": 1.0, "libero_goal_swap": 0.25}
    assert libero_pro.main([*args, "--resume"], search=_fake_search(resumed, rates=rates), specs=FAKE_SPECS) == 0
    assert [c[0] for c in resumed] == ["libero:libero_goal_swap/task5"]
    doc = json.loads(out.read_text())
    assert len(doc["tasks"]) == 4 and doc["not_yet_run"] == []
    assert doc["tasks"][0]["heldout"] == 0.5  # the kept row, not re-measured
    assert doc["aggregates"]["per_family"]["goal"]["drop"]["swap"] == {
        "paired_tasks": 2,
        "base": 0.5,
        "pro": 0.375,
        "drop": 0.125,
    }
    # the paper's figures sit apart from ours, labelled as published
    assert "not measured here" in doc["paper"]["note"]
    assert doc["paper"]["aspire_libero_pro_overall"] == libero_pro.paper_figures()["aspire_libero_pro_overall"]
    assert "paper" not in json.dumps(doc["aggregates"])

    # a file from other protocol settings is not resumed into
    with pytest.raises(SystemExit, match="protocol"):
        libero_pro.main(
            [*args[:-2], "--out", str(out), "--resume", "--k", "2"], search=_fake_search([]), specs=FAKE_SPECS
        )
    # without --resume the run starts over
    fresh = []
    assert libero_pro.main(args, search=_fake_search(fresh), specs=FAKE_SPECS) == 0
    assert len(fresh) == 4


def test_the_published_protocol_is_the_default(tmp_path):
    out = tmp_path / "lp.json"
    calls = []
    argv = ["--families", "object", "--suites", "libero_object_lan", "--per-suite", "1", "--out", str(out)]
    assert libero_pro.main(argv, search=_fake_search(calls), specs=FAKE_SPECS) == 0
    assert calls == [("libero:libero_object_lan/task0", 8, 5, 2, None, None)]
    doc = json.loads(out.read_text())
    assert doc["protocol"]["published_protocol"] is True and doc["protocol"]["survivors"] == 3
    assert doc["seeds"] == {"debug": "51-65", "heldout": "1-50"} and doc["perception_mode"]
    assert doc["selection"]["index_order"][:2] == [0, 5] and doc["selection"]["suites"] == ["libero_object_lan"]
    assert doc["commit"] and doc["machine"]["evaluation_workers"] == 2 and doc["measured_at"]
