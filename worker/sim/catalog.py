"""The benchmark task catalog: what each task is, which cameras and arms it offers, its seed split.

Seeds: a robosuite seed seeds the placement sampler before a reset, so one seed is one initial scene.
Default splits follow the published ASPIRE protocol (robosuite debug 101-125, held-out 1-100).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SceneObject:
    """An object the segmenter can name.

    ``label`` is what the segmenter reports; ``synonyms`` are the phrasings a user or a model would
    use for it; ``body_prefixes`` pick its geoms from the simulator model by body name.
    """

    label: str
    synonyms: tuple[str, ...] = ()
    body_prefixes: tuple[str, ...] = ()
    color: str = ""


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
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def arms(self) -> int:
        return 2 if self.name.startswith("TwoArm") else 1


# Object geoms are found by body name prefix; the robot, gripper and table are labelled generically.
COMMON_OBJECTS = (
    SceneObject("table", ("table", "table top", "tabletop", "surface"), ("table",)),
    SceneObject("gripper", ("gripper", "robot gripper", "end effector", "fingers", "hand"), ("gripper0_", "gripper1_")),
    SceneObject("robot arm", ("robot", "robot arm", "arm", "manipulator"), ("robot0_", "robot1_", "mount0_", "mount1_")),
)

TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    TASKS[spec.key] = spec
    return spec


register(
    TaskSpec(
        key="robosuite:Lift",
        benchmark="robosuite",
        suite="robosuite",
        name="Lift",
        env_name="Lift",
        instruction="Lift the red cube off the table.",
        cameras=("agentview", "robot0_robotview", "robot0_eye_in_hand"),
        objects=(SceneObject("cube", ("cube", "red cube", "block", "red block", "box", "cuboid"), ("cube",), "red"),),
        starter_program="robosuite_lift.py",
    )
)


def get_task(key: str) -> TaskSpec:
    """Return the spec for ``key`` ("benchmark:task"); raises KeyError naming the known keys."""
    try:
        return TASKS[key]
    except KeyError:
        raise KeyError(f"unknown task {key!r}; known tasks: {', '.join(sorted(TASKS))}") from None


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
