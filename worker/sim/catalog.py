"""The benchmark task catalog: what each task is, which cameras and arms it offers, its seed split.

Seeds: a robosuite seed seeds the placement sampler before a reset, so one seed is one initial scene.
Default splits follow the published ASPIRE protocol (robosuite debug 101-125, held-out 1-100).
"""

from __future__ import annotations

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


def parse_seeds(text: str) -> list[int]:
    """Parse "101-103", "1,4,9" or a mix ("1-3,7") into a sorted, de-duplicated list of seeds.

    Raises ValueError with the offending part on anything else (negative, reversed range, empty).
    """
    seeds: set[int] = set()
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ValueError("no seeds given")
    for part in parts:
        if not part:
            raise ValueError(f"empty item in seed list {text!r}")
        try:
            if "-" in part[1:]:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
                if lo > hi:
                    raise ValueError(f"seed range {part!r} runs backwards")
                if hi - lo > 10_000:
                    raise ValueError(f"seed range {part!r} is larger than 10000 seeds")
                seeds.update(range(lo, hi + 1))
            else:
                seeds.add(int(part))
        except ValueError as exc:
            if "seed range" in str(exc):
                raise
            raise ValueError(f"cannot read seed {part!r}: use a-b ranges and comma lists of integers") from None
    if any(s < 0 for s in seeds):
        raise ValueError("seeds must be non-negative")
    return sorted(seeds)


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
