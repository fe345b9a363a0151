"""Benchmark control-step budgets: each task carries its benchmark's published budget, a run setting can
override it, the episode ends STEP_BUDGET when it is spent, and success is latched at the first control
step at which the benchmark's own check passes (worker/sim/base.py SimAdapter), on real MuJoCo."""

import dataclasses

import pytest

from worker.engine import MAX_STEP_BUDGET, EngineSettings, run_episode, simulators
from worker.events import MemorySink, NullSink
from worker.robot import status as st
from worker.sim.base import StepBudgetSpent
from worker.sim.catalog import all_tasks
from worker.sim.libero_catalog import PRO_SUITES, suite_step_budget

#: The published numbers, restated here so that a change in the catalog has to be made twice: robosuite's
#: v1.0 benchmark horizon (ARISE-Initiative/robosuite docs/algorithms/benchmarking.md, robosuite-benchmark
#: rb_bench/util/arguments.py) and OpenVLA's LIBERO max_steps per suite
#: (openvla/openvla experiments/robot/libero/run_libero_eval.py), which LIBERO-Pro keeps per base suite
#: (Zxy-MLlab/LIBERO-PRO README.md, TASK_MAX_STEPS).
ROBOSUITE_BUDGET = 500
LIBERO_BUDGETS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}

#: Moves the gripper back and forth above the table for ever (API frame: robot base, metres).
BACK_AND_FORTH = """
print("start")
while True:
    move_to_pose([0.45, 0.15, 0.12], [0, 1, 0, 0])
    move_to_pose([0.45, -0.15, 0.12], [0, 1, 0, 0])
"""


def test_every_task_carries_its_benchmarks_published_budget():
    tasks = all_tasks()
    robosuite = [t for t in tasks if t.benchmark == "robosuite"]
    assert robosuite and all(t.step_budget == ROBOSUITE_BUDGET for t in robosuite)
    assert all("robosuite" in t.step_budget_source and "500" in t.step_budget_source for t in robosuite)
    for task in (t for t in tasks if t.benchmark == "libero"):
        base = task.suite if task.suite in LIBERO_BUDGETS else task.suite.rpartition("_")[0]
        assert task.step_budget == LIBERO_BUDGETS[base], task.key
        assert ("LIBERO-Pro" in task.step_budget_source) == (task.suite in PRO_SUITES), task.key
    assert {t.suite for t in tasks if t.benchmark == "libero"} & set(LIBERO_BUDGETS)


@pytest.mark.parametrize(
    "suite, budget",
    [
        *LIBERO_BUDGETS.items(),
        ("libero_goal_swap", 300),
        ("libero_spatial_lan", 220),
        ("libero_10_task", 520),
        ("libero_object_object", 280),
    ],
)
def test_each_libero_and_libero_pro_suite_has_the_published_budget(suite, budget):
    assert suite_step_budget(suite)[0] == budget


@pytest.mark.parametrize("suite", ["libero_90_swap", "libero_100", "libero_goal_env", "robosuite"])
def test_a_suite_without_a_published_budget_is_refused(suite):
    with pytest.raises(KeyError, match="no published step budget"):
        suite_step_budget(suite)


@pytest.mark.parametrize("value", [-1, True, False, 2.5, "500", MAX_STEP_BUDGET + 1])
def test_the_step_budget_setting_is_validated(value):
    with pytest.raises(ValueError, match="step_budget"):
        EngineSettings(step_budget=value)


def test_the_step_budget_setting_resolves_against_the_task(lift_spec):
    assert EngineSettings().step_budget_for(lift_spec) == ROBOSUITE_BUDGET
    assert EngineSettings(step_budget=0).step_budget_for(lift_spec) is None
    assert EngineSettings(step_budget=37).step_budget_for(lift_spec) == 37
    assert EngineSettings(step_budget=MAX_STEP_BUDGET).step_budget_for(lift_spec) == MAX_STEP_BUDGET


def test_an_adapter_refuses_a_bad_budget_and_counts_only_the_programs_steps(lift_spec):
    adapter, *_ = simulators().get(lift_spec)
    for bad in (0, -3, True, 1.0):
        with pytest.raises(ValueError, match="step_budget"):
            adapter.reset(1, step_budget=bad)
    adapter.reset(1, step_budget=3)
    assert adapter.steps == 0 and adapter.success_step is None  # the reset's settling steps are not counted
    home = adapter.joint_positions()
    with pytest.raises(StepBudgetSpent, match=r"\(3 steps\)"):
        adapter.drive_joints({0: home + 0.3}, max_steps=50)
    assert adapter.steps == 3 and adapter.control_steps() == 3
    with pytest.raises(StepBudgetSpent):  # a spent budget takes no further step
        adapter.actuate_gripper(0, close=True)
    assert adapter.steps == 3
    adapter.reset(1)  # the next episode starts without the budget and with the counters at zero
    assert adapter.step_budget is None and adapter.steps == 0
    assert adapter.drive_joints({0: home + 0.3}, max_steps=50) == adapter.steps > 3


def test_a_program_moving_back_and_forth_ends_at_exactly_the_tasks_budget(lift_spec):
    sink = MemorySink()
    result = run_episode(lift_spec, BACK_AND_FORTH, 4, sink, EngineSettings(), None)
    assert result.status == st.STEP_BUDGET, (result.status, result.error)
    assert not result.success
    assert result.control_steps == result.step_budget == ROBOSUITE_BUDGET
    assert simulators().get(lift_spec)[0].steps == ROBOSUITE_BUDGET  # not one step more
    assert "control-step budget (500 steps)" in result.error and "stopped" in result.error
    assert result.error_line in (4, 5)
    last = sink.episodes[0]["calls"][-1]
    assert last.primitive == "move_to_pose" and "StepBudgetSpent" in last.error
    assert st.message(st.STEP_BUDGET).startswith("the episode used its benchmark control-step budget")


def test_success_at_the_last_allowed_step_counts_and_one_step_fewer_fails(lift_spec, starter_program):
    free = run_episode(lift_spec, starter_program, 101, NullSink(), EngineSettings(trace=False, step_budget=0), None)
    assert free.status == st.OK and free.success and free.step_budget is None, free.error
    needed = free.control_steps
    assert 0 < needed < ROBOSUITE_BUDGET  # the reference program succeeds well within robosuite's budget
    exact = run_episode(lift_spec, starter_program, 101, NullSink(), EngineSettings(trace=False, step_budget=needed))
    assert exact.status == st.OK and exact.success and exact.control_steps == needed, exact.error
    short = EngineSettings(trace=False, step_budget=needed - 1)
    cut = run_episode(lift_spec, starter_program, 101, NullSink(), short, None)
    assert cut.status == st.STEP_BUDGET and not cut.success
    assert cut.control_steps == cut.step_budget == needed - 1
    assert f"({needed - 1} steps)" in cut.error


def test_a_program_that_succeeds_early_finishes_as_a_success(lift_spec, starter_program):
    result = run_episode(lift_spec, starter_program, 102, NullSink(), EngineSettings(trace=False), None)
    assert result.status == st.OK and result.success and result.error == "", result.error
    adapter, *_ = simulators().get(lift_spec)
    assert result.step_budget == ROBOSUITE_BUDGET
    # Counted up to the step at which the check first passed; the program's last move went on past it.
    assert result.control_steps == adapter.success_step < adapter.steps < ROBOSUITE_BUDGET


def test_success_is_latched_at_the_first_step_the_check_passes(lift_spec, starter_program):
    # Lift the cube (robosuite's check passes), then put it back on the table and let go.
    program = (
        starter_program
        + """
move_to_pose(grasp + np.array([0.0, 0.0, 0.004]), quat)
open_gripper()
move_to_pose(grasp + np.array([0.0, 0.0, 0.15]), quat)
"""
    )
    result = run_episode(lift_spec, program, 101, NullSink(), EngineSettings(trace=False), None)
    adapter, *_ = simulators().get(lift_spec)
    assert not adapter.success()  # the cube is back on the table at the end ...
    assert result.status == st.OK and result.success, result.error  # ... but the task was done on the way
    assert result.control_steps == adapter.success_step < adapter.steps


def test_no_budget_lets_a_program_run_past_the_tasks_budget(lift_spec, starter_program):
    tight = dataclasses.replace(lift_spec, step_budget=40)  # same simulator (same key), a 40-step task
    capped = run_episode(tight, starter_program, 101, NullSink(), EngineSettings(trace=False), None)
    assert capped.status == st.STEP_BUDGET and capped.control_steps == 40 and not capped.success
    free = run_episode(tight, starter_program, 101, NullSink(), EngineSettings(trace=False, step_budget=0), None)
    assert free.status == st.OK and free.success and free.control_steps > 40 and free.step_budget is None
