"""The benchmark task catalog: what each task is, which cameras and arms it offers, its seed split, and
its control-step budget.

Seeds: a robosuite seed seeds the placement sampler before a reset, so one seed is one initial scene.
Default splits follow the published ASPIRE protocol (robosuite debug 101-125, held-out 1-100).

Step budgets: an episode may drive as many control steps (at 20 Hz, worker/sim/robosuite_env.py
CONTROL_FREQ, the control rate of both benchmarks' evaluations) as the benchmark's published evaluation
allows a policy; a run setting can override it (worker/engine.py EngineSettings.step_budget).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS_DIR = Path(__file__).resolve().parent.parent / "programs"


@dataclass(frozen=True)
class SceneObject:
    """An object (or a named part of one) that the segmenter can name.

    ``label`` is what the segmenter reports; ``synonyms`` are the phrasings a user or a model would
    use for it. Its geoms are found in the simulator model by body name: a geom belongs to it when
    the geom's body (or, failing that, the body's root) starts with one of ``body_prefixes`` and, if
    ``geom_contains`` is given, the geom's name contains one of those strings. Parts are listed before
    their whole object so the part claims its geoms first.
    """

    label: str
    synonyms: tuple[str, ...] = ()
    body_prefixes: tuple[str, ...] = ()
    color: str = ""
    geom_contains: tuple[str, ...] = ()

    def phrases(self) -> tuple[str, ...]:
        return (self.label, *self.synonyms)


@dataclass(frozen=True)
class TaskSpec:
    key: str  # "robosuite:Lift"
    benchmark: str  # "robosuite" | "libero"
    suite: str  # "robosuite" | "libero_90" | ...
    name: str  # benchmark-local task name, e.g. "Lift"
    instruction: str
    env_name: str = ""
    robots: tuple[str, ...] = ("Panda",)
    cameras: tuple[str, ...] = ("agentview", "robot0_eye_in_hand")
    keyframe_camera: str = "agentview"
    image_size: int = 256
    objects: tuple[SceneObject, ...] = ()
    debug_seeds: tuple[int, ...] = tuple(range(101, 126))
    heldout_seeds: tuple[int, ...] = tuple(range(1, 101))
    starter_program: str = ""  # file name under worker/programs/
    max_episode_seconds: float = 120.0
    #: Control steps (20 Hz) an episode may use, as the benchmark's published evaluation allows a policy;
    #: None when the benchmark publishes none (then only the wall clock bounds an episode).
    step_budget: int | None = None
    #: Where ``step_budget`` comes from (a file or URL of the benchmark's evaluation code or docs).
    step_budget_source: str = ""
    env_kwargs: dict = field(default_factory=dict, hash=False, compare=False)  # extra suite.make arguments
    extra: dict = field(default_factory=dict, hash=False, compare=False)  # benchmark-specific data

    @property
    def arms(self) -> int:
        return len(self.robots)


# Object geoms are found by body name prefix; the robot, gripper and table are labelled generically.
COMMON_OBJECTS = (
    SceneObject("table", ("table", "table top", "tabletop", "surface"), ("table",)),
    SceneObject("gripper", ("gripper", "robot gripper", "end effector", "fingers", "hand"), ("gripper0_", "gripper1_")),
    SceneObject(
        "robot arm", ("robot", "robot arm", "arm", "manipulator"), ("robot0_", "robot1_", "mount0_", "mount1_")
    ),
)

TASKS: dict[str, TaskSpec] = {}

#: robosuite's published benchmark runs every environment for 500 control steps per episode at 20 Hz:
#: docs/algorithms/benchmarking.md of ARISE-Initiative/robosuite (commit 287d93bf; "All agents were trained
#: for 1500 epochs with 500 steps per episode"), and its benchmarking repository's defaults,
#: ARISE-Initiative/robosuite-benchmark rb_bench/util/arguments.py (commit 2771483c; ``--eval_horizon`` and
#: ``--expl_horizon`` default 500, ``--policy_freq`` default 20), as its recorded runs show
#: (runs/Lift-Panda-OSC-POSE-SEED17/.../variant.json, runs/Wipe-Panda-OSC-POSE-SEED17/.../variant.json:
#: ``"horizon": 500, "control_freq": 20``). One number for every environment; the benchmark ran
#: NutAssemblyRound, not NutAssemblySquare, so Square's 500 is the benchmark's common horizon, not a run of
#: that variant (not verified beyond that). robosuite's environment constructors default to
#: ``horizon=1000``: a constructor default, not an evaluation protocol. Its benchmark reports returns; for
#: when success counts, see worker/sim/base.py SimAdapter (robomimic's rollout on robosuite tasks).
ROBOSUITE_STEP_BUDGET = 500
ROBOSUITE_STEP_BUDGET_SOURCE = (
    "robosuite v1.0 benchmark: 500 steps per episode at 20 Hz (ARISE-Initiative/robosuite "
    "docs/algorithms/benchmarking.md; ARISE-Initiative/robosuite-benchmark rb_bench/util/arguments.py "
    "--eval_horizon 500)"
)


def register(spec: TaskSpec) -> TaskSpec:
    TASKS[spec.key] = spec
    return spec


SINGLE_ARM_CAMERAS = ("agentview", "robot0_robotview", "robot0_eye_in_hand")
TWO_ARM_CAMERAS = ("frontview", "agentview", "robot0_eye_in_hand", "robot1_eye_in_hand")

register(
    TaskSpec(
        key="robosuite:Lift",
        benchmark="robosuite",
        suite="robosuite",
        step_budget=ROBOSUITE_STEP_BUDGET,
        step_budget_source=ROBOSUITE_STEP_BUDGET_SOURCE,
        name="Lift",
        env_name="Lift",
        instruction="Lift the red cube off the table.",
        cameras=SINGLE_ARM_CAMERAS,
        objects=(SceneObject("cube", ("cube", "red cube", "block", "red block", "box", "cuboid"), ("cube",), "red"),),
        starter_program="robosuite_lift.py",
    )
)
register(
    TaskSpec(
        key="robosuite:Stack",
        benchmark="robosuite",
        suite="robosuite",
        step_budget=ROBOSUITE_STEP_BUDGET,
        step_budget_source=ROBOSUITE_STEP_BUDGET_SOURCE,
        name="Stack",
        env_name="Stack",
        instruction="Stack the red cube on top of the green cube.",
        cameras=SINGLE_ARM_CAMERAS,
        objects=(
            SceneObject("red cube", ("red cube", "red block", "cube", "block", "small cube"), ("cubeA",), "red"),
            SceneObject(
                "green cube", ("green cube", "green block", "cube", "block", "large cube"), ("cubeB",), "green"
            ),
        ),
        starter_program="robosuite_stack.py",
    )
)
register(
    TaskSpec(
        key="robosuite:PickPlaceCan",
        benchmark="robosuite",
        suite="robosuite",
        step_budget=ROBOSUITE_STEP_BUDGET,
        step_budget_source=ROBOSUITE_STEP_BUDGET_SOURCE,
        name="PickPlaceCan",
        env_name="PickPlaceCan",
        instruction="Pick up the red can from the left bin and place it in its compartment of the right bin.",
        cameras=("agentview", "birdview", "robot0_eye_in_hand"),
        objects=(
            SceneObject("can", ("can", "red can", "soda can", "coke can", "cylinder"), ("Can_",), "red"),
            SceneObject(
                "can target marker", ("can target", "can outline", "can marker", "target for the can"), ("VisualCan",)
            ),
            SceneObject("milk target marker", ("milk target", "milk marker"), ("VisualMilk",)),
            SceneObject("bread target marker", ("bread target", "bread marker"), ("VisualBread",)),
            SceneObject("cereal target marker", ("cereal target", "cereal marker"), ("VisualCereal",)),
            SceneObject("milk carton", ("milk", "milk carton"), ("Milk_",)),
            SceneObject("bread", ("bread", "loaf"), ("Bread_",)),
            SceneObject("cereal box", ("cereal", "cereal box"), ("Cereal_",)),
            SceneObject("left bin", ("left bin", "source bin", "wooden bin", "bin"), ("bin1",)),
            SceneObject(
                "right bin", ("right bin", "target bin", "dark bin", "bin with compartments", "bin"), ("bin2",)
            ),
        ),
        starter_program="robosuite_pickplacecan.py",
    )
)
register(
    TaskSpec(
        key="robosuite:NutAssemblySquare",
        benchmark="robosuite",
        suite="robosuite",
        step_budget=ROBOSUITE_STEP_BUDGET,
        step_budget_source=ROBOSUITE_STEP_BUDGET_SOURCE,
        name="NutAssemblySquare",
        env_name="NutAssemblySquare",
        instruction="Fit the square nut onto the square peg.",
        cameras=SINGLE_ARM_CAMERAS,
        objects=(
            SceneObject(
                "square nut handle", ("nut handle", "handle of the square nut", "handle"), ("SquareNut",), "", ("g4",)
            ),
            SceneObject("square nut", ("square nut", "nut", "square ring"), ("SquareNut",)),
            SceneObject("round nut", ("round nut", "nut", "round ring"), ("RoundNut",)),
            SceneObject("square peg", ("square peg", "peg", "brown peg", "post"), ("peg1",)),
            SceneObject("round peg", ("round peg", "peg", "cylinder", "grey peg"), ("peg2",)),
        ),
    )
)
register(
    TaskSpec(
        key="robosuite:Wipe",
        benchmark="robosuite",
        suite="robosuite",
        step_budget=ROBOSUITE_STEP_BUDGET,
        step_budget_source=ROBOSUITE_STEP_BUDGET_SOURCE,
        name="Wipe",
        env_name="Wipe",
        instruction="Wipe all the dirt off the table with the wiping tool.",
        cameras=SINGLE_ARM_CAMERAS,
        objects=(SceneObject("dirt", ("dirt", "stain", "spill", "dirt markers", "mess"), ("contact",)),),
        env_kwargs={"gripper_types": "WipingGripper"},
    )
)
register(
    TaskSpec(
        key="robosuite:TwoArmLift",
        benchmark="robosuite",
        suite="robosuite",
        step_budget=ROBOSUITE_STEP_BUDGET,
        step_budget_source=ROBOSUITE_STEP_BUDGET_SOURCE,
        name="TwoArmLift",
        env_name="TwoArmLift",
        instruction="Lift the pot with both arms, each gripping one of its handles.",
        robots=("Panda", "Panda"),
        cameras=TWO_ARM_CAMERAS,
        keyframe_camera="frontview",
        starter_program="robosuite_twoarmlift.py",
        objects=(
            SceneObject("green handle", ("green handle", "pot handle", "handle"), ("pot",), "green", ("handle0",)),
            SceneObject("blue handle", ("blue handle", "pot handle", "handle"), ("pot",), "blue", ("handle1",)),
            SceneObject("pot", ("pot", "red pot", "box"), ("pot",), "red"),
        ),
    )
)
register(
    TaskSpec(
        key="robosuite:TwoArmHandover",
        benchmark="robosuite",
        suite="robosuite",
        step_budget=ROBOSUITE_STEP_BUDGET,
        step_budget_source=ROBOSUITE_STEP_BUDGET_SOURCE,
        name="TwoArmHandover",
        env_name="TwoArmHandover",
        instruction="Pick up the hammer with one arm and hand it over to the other arm.",
        robots=("Panda", "Panda"),
        cameras=TWO_ARM_CAMERAS,
        keyframe_camera="frontview",
        objects=(
            SceneObject("hammer handle", ("hammer handle", "handle", "wooden handle"), ("hammer",), "", ("handle",)),
            SceneObject(
                "hammer head",
                ("hammer head", "head of the hammer", "metal head"),
                ("hammer",),
                "",
                ("head", "neck", "face", "claw"),
            ),
            SceneObject("hammer", ("hammer", "tool"), ("hammer",)),
        ),
        starter_program="robosuite_twoarmhandover.py",
    )
)


_libero_loaded = False


def _load_libero() -> None:
    global _libero_loaded
    if not _libero_loaded:
        from .libero_catalog import libero_tasks

        for spec in libero_tasks():
            TASKS.setdefault(spec.key, spec)
        _libero_loaded = True


def all_tasks() -> list[TaskSpec]:
    """Every task: the robosuite tasks above and the installed LIBERO / LIBERO-Pro suites."""
    _load_libero()
    return list(TASKS.values())


def get_task(key: str) -> TaskSpec:
    """Return the spec for ``key`` ("benchmark:task"); raises KeyError naming what is known."""
    if key.startswith("libero:"):
        _load_libero()
        from .libero_catalog import resolve_key

        key = resolve_key(key)
    try:
        return TASKS[key]
    except KeyError:
        robosuite = sorted(k for k in TASKS if k.startswith("robosuite:"))
        raise KeyError(
            f"unknown task {key!r}; robosuite tasks: {', '.join(robosuite)}; LIBERO tasks are "
            "'libero:<suite>/<task name or index>' (manage.py load_tasks lists them)"
        ) from None


def starter_source(spec: TaskSpec) -> str:
    """The source of the task's reference program (its ``starter_program`` under worker/programs/), or ""."""
    return (PROGRAMS_DIR / spec.starter_program).read_text() if spec.starter_program else ""


# numpy.random.seed (which both simulators' reset calls, worker/sim/robosuite_env.py and libero_env.py)
# takes 0 <= seed <= 2**32 - 1; anything larger raises ValueError (or OverflowError) inside an episode.
SEED_MIN = 0
SEED_MAX = 2**32 - 1
# A range in seed text ("a-b") is refused above this many seeds before it is expanded, whatever the limit.
MAX_SEED_RANGE = 10_000
# Without a caller's limit, no more seeds than this are expanded from text (a guard, not a policy).
MAX_SEEDS_ANY = 100_000
_SEED_ITEM = re.compile(r"(\d+)(?:\s*-\s*(\d+))?", re.ASCII)


class SeedError(ValueError):
    """Seeds that cannot be run; the message says which seed or item and why."""


def _out_of_range(seed: int | str) -> SeedError:
    if isinstance(seed, int) and seed.bit_length() > 128:  # str() of a 5,000-digit int raises ValueError
        shown = f"{'-' if seed < 0 else ''}2**{seed.bit_length() - 1}..."
    else:
        shown = str(seed) if len(str(seed)) <= 40 else str(seed)[:37] + "..."
    return SeedError(f"seed {shown} is out of range: seeds are non-negative integers up to {SEED_MAX} (2**32 - 1)")


def _check_seed(seed: int) -> int:
    if not SEED_MIN <= seed <= SEED_MAX:
        raise _out_of_range(seed)
    return seed


def _digits(text: str) -> int:
    if len(text.lstrip("0")) > len(str(SEED_MAX)):  # never convert a 10,000-digit string to an int
        raise _out_of_range(text)
    return _check_seed(int(text))


def _seeds_from_text(text: str, limit: int) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise SeedError("no seeds given")
    spans: list[tuple[int, int]] = []
    for part in parts:
        if not part:
            raise SeedError(f"empty item in seed list {text[:80]!r}")
        if part.startswith("-") and part[1:].strip().isdecimal():
            raise SeedError(f"seed {part[:40]!r} is negative: seeds are non-negative integers up to {SEED_MAX}")
        match = _SEED_ITEM.fullmatch(part)
        if match is None:
            raise SeedError(f"cannot read seed {part[:40]!r}: use a-b ranges and comma lists of whole numbers")
        lo = _digits(match.group(1))
        hi = lo if match.group(2) is None else _digits(match.group(2))
        if lo > hi:
            raise SeedError(f"seed range {part!r} runs backwards")
        if hi - lo + 1 > MAX_SEED_RANGE:
            raise SeedError(f"seed range {part!r} is larger than {MAX_SEED_RANGE} seeds")
        spans.append((lo, hi))
    total = sum(hi - lo + 1 for lo, hi in spans)  # counted before anything is expanded
    if total > limit:
        raise SeedError(f"{total} seeds given; at most {limit} are allowed")
    return [s for lo, hi in spans for s in range(lo, hi + 1)]


def _seeds_from_list(items) -> list[int]:
    seeds: list[int] = []
    for item in items:
        # bool is an int subclass and 1.0 == 1: both are refused rather than read as seeds.
        if isinstance(item, bool) or not isinstance(item, int):
            raise SeedError(f"seed {str(item)[:40]!r} is not an integer: give a list of integers")
        seeds.append(_check_seed(item))
    return seeds


def validate_seeds(value, *, limit: int | None = None, unique: bool = True) -> list[int]:
    """The one check of seeds from any entry point (forms, the REST API, commands, skills): returns them sorted.

    ``value`` is text ("101-103", "1,4,9", "1-3,7") or a list/tuple of integers. Every seed must be an
    int (not a bool, float or string inside a list) within SEED_MIN..SEED_MAX (0..2**32-1, numpy's seed
    range). ``unique``: a seed given twice (e.g. ``[1, 1, 1]`` or ``"1-3,2"``) is refused, naming the
    seed, instead of being silently collapsed; with ``unique=False`` repeats are collapsed. ``limit``: at
    most this many seeds (callers pass ASPIRE["MAX_SEEDS_PER_RUN"]; without one, MAX_SEEDS_ANY), counted
    before repeats are collapsed. Raises SeedError (a ValueError)
    with a message meant for the person who typed the seeds.
    """
    most = MAX_SEEDS_ANY if limit is None else limit
    if isinstance(value, str):
        seeds = _seeds_from_text(value, most)
    elif isinstance(value, (list, tuple)):
        if len(value) > most:
            raise SeedError(f"{len(value)} seeds given; at most {most} are allowed")
        seeds = _seeds_from_list(value)
    else:
        raise SeedError('give a list of integers or a string such as "101-103" or "1,4,9"')
    if not seeds:
        raise SeedError("no seeds given")
    distinct = sorted(set(seeds))
    if unique and len(distinct) != len(seeds):
        seen: set[int] = set()
        repeated = sorted({s for s in seeds if s in seen or seen.add(s)})
        shown = ", ".join(str(s) for s in repeated[:10]) + (" ..." if len(repeated) > 10 else "")
        raise SeedError(f"seeds given more than once: {shown}; list each seed once")
    return distinct


def parse_seeds(text: str, *, limit: int | None = None) -> list[int]:
    """Parse "101-103", "1,4,9" or a mix ("1-3,7") into a sorted list of seeds (:func:`validate_seeds`).

    Raises SeedError (a ValueError) with the offending part: negative, above 2**32 - 1, reversed or too
    large a range, a repeated seed, an empty item, or more than ``limit`` seeds.
    """
    return validate_seeds(str(text), limit=limit)


def format_seeds(seeds) -> str:
    """Inverse of :func:`parse_seeds`: [1,2,3,7] -> "1-3,7"."""
    seeds = sorted(set(int(s) for s in seeds))
    out, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        out.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(out)


#: The benchmarks' success checks in words, read from robosuite 1.4's ``_check_success`` of each
#: environment (robosuite/environments/manipulation/*.py); heights are above the table top.
ROBOSUITE_SUCCESS = {
    "Lift": "the cube's centre is more than 0.04 m above the table top (lift.py _check_success).",
    "Stack": "the red cube (cubeA) touches the green cube (cubeB), is off the table, and the gripper no "
    "longer grasps it: released on top (stack.py staged_rewards r_stack).",
    "PickPlaceCan": "the can's centre lies inside its compartment of the right-hand bin (x and y within "
    "the compartment, below the bin's rim plus 0.1 m) and the gripper is more than about 0.06 m away "
    "(released: 1 - tanh(10 d) < 0.6; pick_place.py _check_success, not_in_bin).",
    "NutAssemblySquare": "the square nut's centre is within 0.03 m of the square peg in x and in y and less "
    "than 0.05 m above the table top (down around the peg), and the gripper is more than about 0.06 m "
    "away from the nut (released; nut_assembly.py on_peg, _check_success).",
    "Wipe": "every dirt marker on the table has been wiped (the wiping pad passed over it in contact; "
    "wipe.py _check_success).",
    "TwoArmLift": "the pot's bottom is more than 0.10 m above the table top (two_arm_lift.py _check_success).",
    "TwoArmHandover": "arm 1 grasps the hammer's handle, arm 0 touches the hammer nowhere, and the hammer is "
    "more than 0.1 m above the table top (two_arm_handover.py _check_success).",
}


def success_condition(spec: TaskSpec) -> str:
    """The benchmark's success condition for ``spec`` in words: robosuite's ``_check_success`` (above), or
    a LIBERO task's BDDL goal predicates (``(:goal ...)`` of its .bddl file, all of which must hold at
    once). The episode succeeds at the first control step at which it holds, within the step budget."""
    if spec.benchmark == "robosuite":
        return ROBOSUITE_SUCCESS.get(spec.name, "")
    bddl = spec.extra.get("bddl")
    if not bddl:
        return ""
    try:
        text = Path(bddl).read_text()
    except OSError:
        return ""
    start = text.find("(:goal")
    if start < 0:
        return ""
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            break
    goal = " ".join(text[start + len("(:goal") : end].split())
    return f"all of these BDDL goal predicates hold at once: {goal}"


def scene_facts(spec: TaskSpec) -> str:
    """What the task tells a camera user before the first image: arms, cameras, the objects and parts a
    text prompt can name (with the phrasings it understands), and the step budget."""
    names = []
    for obj in spec.objects:
        phrasings = [s for s in obj.synonyms if s != obj.label][:3]
        names.append(obj.label + (f" (also: {', '.join(phrasings)})" if phrasings else ""))
    lines = [
        f"arms: {spec.arms}; cameras: {', '.join(spec.cameras)} ({spec.image_size}x{spec.image_size} RGB-D)",
        "objects and parts segment_text_prompt can name: " + ("; ".join(names) or "(none listed)"),
        "also always: table, gripper, robot arm",
    ]
    if spec.step_budget:
        lines.append(
            f"step budget: {spec.step_budget} control steps at 20 Hz ({spec.step_budget / 20:.0f} s of motion)"
        )
    return "\n".join(lines)
