"""robosuite 1.4 adapter (Panda, JOINT_POSITION control at 20 Hz).

The arm is driven through robosuite's joint-position controller along a trajectory that advances
``JOINT_STEP`` rad per control step on the joint with the farthest to go (1 rad/s at 20 Hz), the other
joints scaled so all arrive together; each action asks for the gap between that trajectory and the
measured joints, capped at MAX_LEAD.
"""

from __future__ import annotations

import numpy as np

from . import rendering
from .base import CameraFrame, SimAdapter, StepBudgetSpent
from .catalog import COMMON_OBJECTS, SceneObject, TaskSpec

# Offscreen frames come back bottom-up; geoms in the segmentation render are (objtype, objid) pairs.
_MJOBJ_GEOM = 5
SETTLE_STEPS = 10  # after reset the Lift cube starts ~1 cm above the table (SIM_FACTS.md)
CONTROL_FREQ = 20


#: Largest joint lead (rad) one action may command. robosuite's joint controller is a critically
#: damped PD on acceleration (torque = M (kp e - kd v)), so a lead e settles at v = kp e / kd: with
#: kp = 150 (kd = 24.5) a 0.05 rad cap holds joints to 0.3 rad/s whatever the trajectory asks
#: (measured: long moves stalled); 0.2 rad lets them follow the 1 rad/s trajectory.
MAX_LEAD = 0.2


def _controller_config() -> dict:
    from robosuite.controllers import load_controller_config

    cfg = load_controller_config(default_controller="JOINT_POSITION")
    # Stiffer than robosuite's default kp=50 so joint targets are held to about a milliradian under
    # gravity and contact; delta actions in [-1, 1] map to +-MAX_LEAD rad.
    cfg.update(kp=150, damping_ratio=1, input_max=1, input_min=-1, output_max=MAX_LEAD, output_min=-MAX_LEAD)
    return cfg


def _check_budget(step_budget) -> int | None:
    """``step_budget`` as an int >= 1, or None; raises ValueError otherwise (bools included)."""
    if step_budget is None:
        return None
    if isinstance(step_budget, bool) or not isinstance(step_budget, (int, np.integer)) or step_budget < 1:
        raise ValueError(f"step_budget must be a whole number of control steps >= 1 or None, not {step_budget!r}")
    return int(step_budget)


class RobosuiteAdapter(SimAdapter):
    JOINT_STEP = 0.05  # rad per control step

    def __init__(self, spec: TaskSpec):
        rendering.configure()
        self.spec = spec
        self.env = self._make_env(spec)
        self._scene_objects: list[SceneObject] | None = None
        self._labels: list[str] = []
        self._lut_for_model = None
        self._lut = None
        self._keyframe_renderer = None
        self._keyframe_option = None
        self._hold: dict[int, np.ndarray] = {}
        self._gripper_cmd: dict[int, float] = {}
        self.steps = 0
        self.step_budget: int | None = None
        self.success_step: int | None = None

    def _make_env(self, spec: TaskSpec):
        import robosuite as suite

        # Object sizes are drawn when the model is built; fixing that draw makes them the same in
        # every worker process, so the episode seed alone decides the scene.
        np.random.seed(0)
        return suite.make(
            spec.env_name,
            robots=list(spec.robots),
            controller_configs=_controller_config(),
            has_renderer=False,
            has_offscreen_renderer=True,
            use_camera_obs=False,
            use_object_obs=False,
            control_freq=CONTROL_FREQ,
            # The benchmark's step budget is enforced by _step (per run setting, with its own status),
            # not by robosuite's horizon, which would only raise on the next step.
            horizon=10**7,
            ignore_done=True,
            hard_reset=False,
            reward_shaping=False,
            **spec.env_kwargs,
        )

    # ------------------------------------------------------------------------------------------
    @property
    def sim(self):
        # Never cache env.sim: a hard reset builds a new one and an old reference renders the old scene.
        return self.env.sim

    @property
    def robots(self):
        return self.env.robots

    def reset(self, seed: int, step_budget: int | None = None) -> None:
        step_budget = _check_budget(step_budget)
        np.random.seed(int(seed))
        self.env.reset()
        self._after_reset(step_budget)

    def _after_reset(self, step_budget: int | None = None) -> None:
        # The solver's warm start survives a soft reset; left in place it makes an episode's contacts
        # (and so its outcome) depend on the episode before it. Clear it: same seed, same episode.
        self.sim.data._data.qacc_warmstart[:] = 0.0
        for robot in self.robots:
            # robosuite 1.4 keeps the gripper's ramped command across soft resets, which makes the
            # first gripper motion of an episode depend on the previous episode (measured).
            if hasattr(robot.gripper, "current_action"):
                robot.gripper.current_action = np.zeros(robot.gripper.dof)
        self._hold = {arm: self.joint_positions(arm) for arm in range(len(self.robots))}
        self._gripper_cmd = {arm: 0.0 for arm in range(len(self.robots))}
        for _ in range(SETTLE_STEPS):  # not the program's: uncounted, unchecked, outside the budget
            self._advance()
        self.steps = 0
        self.success_step = None
        self.step_budget = step_budget

    def _check_step_success(self, done: bool) -> bool:
        """The benchmark's success check after one control step: robosuite's ``_check_success()``
        (robosuite's own ``done`` only marks the horizon)."""
        return bool(self.env._check_success())

    def success(self) -> bool:
        return bool(self.env._check_success())

    def reward(self) -> float:
        return float(self.env.reward(None))

    def sim_time(self) -> float:
        return float(self.sim.data.time)

    def close(self) -> None:
        """Free the simulator and its GL contexts. Each context is made current before it is freed:
        mjr_freeContext deletes GL objects in whatever context is current, so freeing one simulator
        while another's context is current (several simulators in one thread, the engine's cache
        evicting one) would delete the other's framebuffers and leave it rendering garbage depth."""
        if self._keyframe_renderer is not None:
            renderer = self._keyframe_renderer[1]
            gl = getattr(renderer, "_gl_context", None)
            if gl is not None:
                gl.make_current()
            renderer.close()
            self._keyframe_renderer = None
        context = getattr(self.env.sim, "_render_context_offscreen", None)
        if context is not None:
            context.gl_ctx.make_current()
        self.env.close()

    # -- sensing ---------------------------------------------------------------------------------
    def object_labels(self) -> list[str]:
        self._ensure_lut()
        return self._labels

    def scene_objects(self) -> list[SceneObject]:
        """Everything the segmenter can name, in matching order (parts before wholes)."""
        if self._scene_objects is None:
            self._scene_objects = (
                self._task_objects()
                + list(COMMON_OBJECTS)
                + [
                    SceneObject("floor", ("floor", "ground")),
                    SceneObject("wall", ("wall", "walls")),
                ]
            )
        return self._scene_objects

    def _task_objects(self) -> list[SceneObject]:
        return list(self.spec.objects)

    def _ensure_lut(self) -> None:
        model = self.sim.model._model
        if self._lut_for_model is model:
            return
        import mujoco

        objects = self.scene_objects()
        self._labels = [o.label for o in objects]
        lut = np.full(model.ngeom + 1, -1, dtype=np.int32)

        def name_of(kind, index):
            return mujoco.mj_id2name(model, kind, index) or ""

        def match(geom_name, body_names):
            for index, obj in enumerate(objects):
                if obj.geom_contains and not any(part in geom_name for part in obj.geom_contains):
                    continue
                if any(n.startswith(p) for p in obj.body_prefixes for n in body_names):
                    return index
            return -1

        for g in range(model.ngeom):
            body = model.geom_bodyid[g]
            geom_name = name_of(mujoco.mjtObj.mjOBJ_GEOM, g)
            if body == 0:  # world body: floor and walls, named by geom
                lut[g] = next(
                    (i for i, o in enumerate(objects) if not o.body_prefixes and geom_name.startswith(o.label)), -1
                )
                continue
            # The geom's own body decides (gripper links hang under the robot's root); else its root.
            index = match(geom_name, (name_of(mujoco.mjtObj.mjOBJ_BODY, body),))
            lut[g] = (
                index if index >= 0 else match(geom_name, (name_of(mujoco.mjtObj.mjOBJ_BODY, model.body_rootid[body]),))
            )
        self._lut = lut
        self._lut_for_model = model

    def render(
        self, camera: str, size: int | None = None, depth: bool = True, segmentation: bool = False
    ) -> CameraFrame:
        from robosuite.utils import camera_utils

        size = int(size or self.spec.image_size)
        sim = self.sim
        # robosuite renders into whatever GL context is current; with several simulators in one
        # thread (or after one was closed) that is not necessarily this one's.
        sim._render_context_offscreen.gl_ctx.make_current()
        if depth:
            rgb, raw_depth = sim.render(width=size, height=size, camera_name=camera, depth=True)
            depth_m = camera_utils.get_real_depth_map(sim, raw_depth[::-1]).astype(np.float32)
        else:
            rgb = sim.render(width=size, height=size, camera_name=camera)
            depth_m = None
        seg = None
        if segmentation:
            self._ensure_lut()
            raw = sim.render(width=size, height=size, camera_name=camera, segmentation=True)[::-1]
            ids = np.clip(raw[..., 1], 0, len(self._lut) - 1)
            seg = np.where(raw[..., 0] == _MJOBJ_GEOM, self._lut[ids], -1).astype(np.int32)
        return CameraFrame(
            camera=camera,
            rgb=np.ascontiguousarray(rgb[::-1]),
            depth=None if depth_m is None else np.ascontiguousarray(depth_m),
            segmentation=seg,
            intrinsics=np.asarray(camera_utils.get_camera_intrinsic_matrix(sim, camera, size, size), dtype=np.float64),
            pose=np.asarray(camera_utils.get_camera_extrinsic_matrix(sim, camera), dtype=np.float64),
        )

    def render_keyframe(self, camera: str, size: int | None = None) -> np.ndarray:
        """An (H, W, 3) uint8 picture for the trace, not for perception.

        Rendered with MuJoCo's own ``mujoco.Renderer`` on a second context without multisampling or
        reflections: 14.5 ms instead of 40 ms per 256 px frame on a 2-core CPU (measured; the cost
        barely depends on size, so smaller keyframes would not help). The picture matches robosuite's
        to a mean of 0.5 grey levels. Robot programs never see these frames.
        """
        import mujoco

        size = int(size or self.spec.image_size)
        model = self.sim.model._model
        if (
            self._keyframe_renderer is None
            or self._keyframe_renderer[0] is not model
            or self._keyframe_renderer[2] != size
        ):
            if self._keyframe_renderer is not None:
                self._keyframe_renderer[1].close()
            samples = model.vis.quality.offsamples
            model.vis.quality.offsamples = 0  # read once, when the renderer's GL buffers are made
            try:
                renderer = mujoco.Renderer(model, size, size)
            finally:
                model.vis.quality.offsamples = samples
            self._keyframe_renderer = (model, renderer, size)
            self._keyframe_option = mujoco.MjvOption()
            self._keyframe_option.geomgroup[0] = 0  # collision geoms, which robosuite's own frames hide too
        renderer = self._keyframe_renderer[1]
        try:
            renderer.update_scene(self.sim.data._data, camera=camera, scene_option=self._keyframe_option)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            return renderer.render().copy()
        finally:
            # robosuite renders without making its context current again; hand it back.
            self.sim._render_context_offscreen.gl_ctx.make_current()

    # -- robot -----------------------------------------------------------------------------------
    def base_pose(self, arm: int = 0) -> np.ndarray:
        sim = self.sim
        body = sim.model.body_name2id(self.robots[arm].robot_model.root_body)
        pose = np.eye(4)
        pose[:3, :3] = sim.data.body_xmat[body].reshape(3, 3)
        pose[:3, 3] = sim.data.body_xpos[body]
        return pose

    def joint_positions(self, arm: int = 0) -> np.ndarray:
        return np.array(self.sim.data.qpos[self.robots[arm]._ref_joint_pos_indexes], dtype=np.float64)

    def joint_velocities(self, arm: int = 0) -> np.ndarray:
        return np.array(self.sim.data.qvel[self.robots[arm]._ref_joint_vel_indexes], dtype=np.float64)

    def joint_limits(self, arm: int = 0) -> np.ndarray:
        """(7, 2) lower/upper joint limits in radians."""
        model = self.sim.model
        ids = [model.joint_name2id(n) for n in self.robots[arm].robot_joints]
        return np.array(model.jnt_range[ids], dtype=np.float64)

    def grip_site(self, arm: int = 0) -> str:
        return self.robots[arm].gripper.important_sites["grip_site"]

    def ee_pose(self, arm: int = 0) -> np.ndarray:
        sim = self.sim
        site = sim.model.site_name2id(self.grip_site(arm))
        pose = np.eye(4)
        pose[:3, :3] = sim.data.site_xmat[site].reshape(3, 3)
        pose[:3, 3] = sim.data.site_xpos[site]
        return pose

    def gripper_width(self, arm: int = 0) -> float:
        """Finger separation in metres (0 for a gripper without fingers, such as Wipe's tool)."""
        q = self.sim.data.qpos[self.robots[arm]._ref_gripper_joint_pos_indexes]
        if len(q) == 0:
            return 0.0
        return float(abs(q[0] - q[-1])) if len(q) > 1 else float(abs(q[0]))

    def robot_qpos(self) -> np.ndarray:
        """The robots' proprioception in the simulator's qpos layout: every arm and gripper joint (radians
        or metres) at its index, NaN at every other entry (objects' free joints), so the robot API can
        index its own joints without ever holding another object's state."""
        qpos = np.full(self.sim.model.nq, np.nan)
        for robot in self.robots:
            for idx in (robot._ref_joint_pos_indexes, robot._ref_gripper_joint_pos_indexes):
                qpos[idx] = self.sim.data.qpos[idx]
        return qpos

    def gripper_max_width(self, arm: int = 0) -> float:
        model = self.sim.model
        rng = [model.jnt_range[model.joint_name2id(n)] for n in self.robots[arm].gripper.joints]
        return float(sum(abs(r).max() for r in rng))

    def _advance(self) -> bool:
        """One control step (1 / CONTROL_FREQ s) towards the held joint goals and gripper commands;
        returns the environment's ``done``."""
        parts = []
        for arm, robot in enumerate(self.robots):
            delta = self._hold[arm] - self.joint_positions(arm)
            parts.append(np.clip(delta / MAX_LEAD, -1.0, 1.0))
            parts.append(np.full(robot.gripper.dof, self._gripper_cmd[arm]))
        _, _, done, _ = self.env.step(np.concatenate(parts))
        return bool(done)

    def _step(self) -> None:
        """One counted control step of the program, then the benchmark's success check (latched at the
        first step it passes). Raises StepBudgetSpent once the step that reaches ``step_budget`` has
        been taken without success; after success the budget no longer applies (the benchmark's
        episode is decided)."""
        budget = self.step_budget
        if self.success_step is None and budget is not None and self.steps >= budget:
            raise StepBudgetSpent(budget)
        done = self._advance()
        self.steps += 1
        if self.step_hook is not None:
            self.step_hook(self.steps)  # episode recording: renders a frame every few steps
        if self.success_step is None:
            if self._check_step_success(done):
                self.success_step = self.steps
            elif budget is not None and self.steps >= budget:
                raise StepBudgetSpent(budget)

    def drive_joints(
        self, targets: dict[int, np.ndarray], max_steps: int = 200, tol: float = 2e-3, settle: bool = True
    ) -> int:
        """Move the given arms to ``targets`` ((7,) rad each) along straight joint-space lines.

        Each step advances every arm's goal by at most JOINT_STEP rad on its largest joint, scaling
        the other joints so they arrive together; stops once all joints are within ``tol`` rad (and,
        with ``settle``, nearly still), or after ``max_steps``. Returns the control steps taken.
        Raises StepBudgetSpent at the step that spends the episode's budget (see _step).
        """
        targets = {arm: np.asarray(q, dtype=np.float64).reshape(7) for arm, q in targets.items()}
        goal = {arm: self.joint_positions(arm) for arm in targets}
        for step in range(1, max_steps + 1):
            for arm, target in targets.items():
                remaining = target - goal[arm]
                biggest = np.abs(remaining).max()
                goal[arm] = (
                    target if biggest <= self.JOINT_STEP else goal[arm] + remaining * (self.JOINT_STEP / biggest)
                )
                self._hold[arm] = goal[arm]
            self._step()
            if all(
                np.abs(targets[a] - self.joint_positions(a)).max() < tol
                and (not settle or np.abs(self.joint_velocities(a)).max() < 0.05)
                for a in targets
            ):
                return step
        return max_steps

    def actuate_gripper(self, arm: int, close: bool, max_steps: int = 40) -> float:
        """Close (or open) the gripper until the fingers stop moving; returns the width in metres.

        Raises ValueError for a gripper without fingers, StepBudgetSpent at the step that spends the
        episode's budget (see _step)."""
        if self.robots[arm].gripper.dof == 0:
            raise ValueError(f"arm{arm}'s {type(self.robots[arm].gripper).__name__} has no fingers to open or close")
        self._gripper_cmd[arm] = 1.0 if close else -1.0
        last = self.gripper_width(arm)
        still = 0
        for step in range(max_steps):
            self._step()
            width = self.gripper_width(arm)
            still = still + 1 if abs(width - last) < 5e-4 else 0
            last = width
            if step >= 5 and still >= 2:
                break
        return last
