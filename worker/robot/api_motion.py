"""Motion and gripper primitives: IK, collision-checked joint moves, poses, per-arm variants.

Frames and units as in worker.robot.api: world = robot0 base frame, metres, radians, wxyz.
"""

from __future__ import annotations

import numpy as np

from . import geometry as geo
from . import ik as ik_tol
from . import status as st
from .media import draw_path
from .motion import MotionPlan, contact_forces
from .occupancy import UNKNOWN_SPACE, PerceivedScene
from .primitive import primitive
from .scene3d import PLAN_SEGMENT_SAMPLES
from .tracer import CallContext

#: robosuite's grip site closes the fingers along its x axis (measured); the published API follows the
#: panda_hand convention with the fingers along y. So pose_site = pose_api @ API_TO_SITE, a +90 degree
#: turn about the approach axis z, and pose_api = pose_site @ SITE_TO_API.
API_TO_SITE = np.array([[0.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
SITE_TO_API = API_TO_SITE.T

#: A closed Panda gripper with nothing between the fingers measures about 1-2 mm (measured).
EMPTY_GRIPPER_WIDTH = 0.005
#: A move is REACHED when the grasp point ends within POSITION_TOL (m) and ORIENTATION_TOL (rad) of
#: the target pose and every joint within JOINT_TOL (rad) of the target joints; else NOT_REACHED (or
#: COLLISION when contact stopped it). 5 mm: IK solves to 1 mm and the joint controller holds about a
#: milliradian (worker.sim.robosuite_env), so a settled arm lands within 1-2 mm; 5 mm is a third of the
#: 1.5-2 cm a top-down grasp leaves between an open finger and a 4-5 cm cube, so a REACHED pre-grasp
#: still grasps. (The former 0.01 rad joint tolerance let a move end ~1 cm short, 0.01 rad at the
#: Panda's ~1 m reach, and still say REACHED.) 0.05 rad (3 degrees) of orientation tilts a 4.5 cm
#: finger's tip by ~2 mm. 0.02 rad on a joint: a joint move that reaches its pose but not its joints
#: (another arm posture) is not where it was asked to go.
POSITION_TOL = 0.005
ORIENTATION_TOL = 0.05
JOINT_TOL = 0.02
#: Rise (N) of the external contact force on a link, from the start of a move to where it stopped,
#: that counts as having been stopped by contact: above the few newtons a steady grasp's pad forces
#: drift by while the arm moves, below what pressing a finger into the table produces (tens of N).
CONTACT_FORCE_N = 5.0
#: A joint within this distance (rad, ~1 degree) of a limit at IK's closest attempt is reported as bound there.
IK_LIMIT_MARGIN = 0.02
#: Waypoints of a planned path are passed within this joint error (rad) before moving on.
WAYPOINT_TOL = 0.03


class MotionPrimitives:
    """Mixed into RobotAPI; uses its adapter, ik, planners, frame conversions and observations."""

    # -- helpers -----------------------------------------------------------------------------------
    def _arm(self, arm: int) -> int:
        if arm >= self.spec.arms:
            raise ValueError(f"this task has {self.spec.arms} arm(s); arm{arm} does not exist")
        return arm

    def _solve_ik(
        self, ctx: CallContext, arm: int, position, quaternion_wxyz, artifact: str = "ik", best_effort: bool = False
    ):
        """IK for ``arm``'s grasp point; the joints, or None when no solution meets the tolerances (status
        IK_FAILED). ``best_effort``: return the closest attempt's joints instead of None (the published
        API's behaviour; the status still says IK_FAILED)."""
        arm = self._arm(arm)
        pos = geo.as_array(position, (3,), "position")
        quat = geo.as_array(quaternion_wxyz, (4,), "quaternion_wxyz")
        target = self._to_sim(geo.make_transform(pos, quat)) @ API_TO_SITE
        robot = self.adapter.robots[arm]
        model = self.planners.get(self.adapter).robot
        model.set_config({a: self.adapter.joint_positions(a) for a in range(self.spec.arms)})
        result = self.ik.solve(
            model.model,
            np.array(model.data.qpos),
            self.adapter.grip_site(arm),
            robot._ref_joint_pos_indexes,
            target,
            home=np.asarray(robot.init_qpos, dtype=np.float64),
        )
        limits = self.adapter.joint_limits(arm)
        at_limits = []
        if result.closest is not None:
            q = np.asarray(result.closest, dtype=np.float64)
            for i in range(min(7, len(q))):
                low, high = float(limits[i, 0]), float(limits[i, 1])
                if q[i] - low < IK_LIMIT_MARGIN or high - q[i] < IK_LIMIT_MARGIN:
                    at_limits.append(
                        {"joint": i, "value_rad": round(float(q[i]), 3), "limits_rad": [round(low, 3), round(high, 3)]}
                    )
        ctx.artifact(
            artifact,
            {
                "arm": arm,
                "iterations": result.iterations,
                "position_error_m": round(result.position_error, 5),
                "orientation_error_rad": round(result.orientation_error, 5),
                "tolerance": {"position_m": ik_tol.POSITION_TOL, "orientation_rad": ik_tol.ORIENTATION_TOL},
                "start_configurations": result.attempts,
                "joints_at_limits": at_limits,
            },
        )
        if not result.ok:
            bound = (
                "; at the closest attempt "
                + ", ".join(
                    f"joint {j['joint']} sits at its limit ({j['value_rad']} rad, range {j['limits_rad']})"
                    for j in at_limits
                )
                if at_limits
                else "; no joint was at its limit at the closest attempt (more likely out of reach, or a wrist "
                "orientation these starts cannot turn to)"
            )
            ctx.set_status(
                st.IK_FAILED,
                f"no IK solution for arm{arm} at position {np.round(pos, 3).tolist()}: closest "
                f"{result.position_error * 1000:.1f} mm / {result.orientation_error:.3f} rad from the target "
                f"(tolerance {ik_tol.POSITION_TOL * 1000:.0f} mm / {ik_tol.ORIENTATION_TOL} rad); a local solver, "
                f"tried from {result.attempts} start configurations (the current one, the last joint turned by "
                f"+-pi, the home posture){bound}",
            )
            if best_effort:
                return result.closest
        return result.joints

    def _check_joints(self, arm: int, joints, name: str = "joints") -> np.ndarray:
        if joints is None:
            raise ValueError(f"{name} is None: the solve_ik call before this one found no solution (IK_FAILED)")
        q = geo.as_array(joints, (7,), name)
        limits = self.adapter.joint_limits(arm)
        for i in range(7):
            if not limits[i, 0] - 1e-6 <= q[i] <= limits[i, 1] + 1e-6:
                raise ValueError(
                    f"{name}[{i}] = {q[i]:.3f} rad is outside its limits [{limits[i, 0]:.3f}, {limits[i, 1]:.3f}]"
                )
        return q

    # -- perceived scene ---------------------------------------------------------------------------
    def _scene(self) -> PerceivedScene:
        """This episode's perceived scene (built on first use; ``unknown_space`` from the attribute
        of that name when set, else occupancy.UNKNOWN_SPACE)."""
        scene = self.__dict__.get("_perceived")
        if scene is None:
            bases = np.array([self.adapter.base_pose(a)[:3, 3] for a in range(self.spec.arms)])
            scene = PerceivedScene(bases, getattr(self, "unknown_space", UNKNOWN_SPACE))
            self.__dict__["_perceived"] = scene
        return scene

    def _holding(self) -> dict[int, bool]:
        return self.__dict__.setdefault("_held", {})

    def _perceive(self, frame, depth=None) -> None:
        """Fuse a rendered camera frame into the perceived scene (self-filtered with the robot model at
        the configuration it was rendered in). ``depth``: the (H, W) metres image the program was given
        (with sensor noise in the realistic perception mode); default the frame's own."""
        planner = self.planners.get(self.adapter)
        qpos = self.adapter.robot_qpos()
        volume = planner.robot_volume(qpos)
        holding = [
            (arm, planner.robot.site_pose(arm), self.adapter.gripper_width(arm))
            for arm, held in self._holding().items()
            if held
        ]
        depth = frame.depth if depth is None else depth
        self._scene().observe(frame.camera, depth, frame.intrinsics, frame.pose, volume, holding)

    def _describe_hit(self, link: str, hit) -> str:
        """A blocking Hit in program terms: the link, the point in the API frame, the camera."""
        point = np.round(geo.transform_points(self._T_api_sim, hit.point)[0], 3).tolist()
        if hit.kind == "robot":
            return f"{hit.labels[0]} would meet {hit.labels[1]} at {point} m"
        if hit.kind == "unknown":
            return f"{link} would enter space no camera has seen, at {point} m (unknown_space='occupied')"
        text = f"{link} would meet occupied space at {point} m, seen by camera {hit.camera}"
        support = self._scene().support_height()
        if support is not None:
            # Heights are frame-free here: the sim world and the API frame (robot0 base) share +z.
            text += f", {float(hit.point[2]) - support:.3f} m above the support surface"
        return text

    def _sensed_forces(self, arms: list[int]) -> dict[str, float]:
        sim = self.adapter.sim
        return contact_forces(sim.model._model, sim.data._data, self.planners.get(self.adapter).robot, arms)

    def _move(
        self,
        ctx: CallContext,
        goals: dict[int, np.ndarray],
        target_positions: dict[int, np.ndarray] | None = None,
        collision_check: bool = True,
        target_poses: dict[int, np.ndarray] | None = None,
    ) -> str:
        """Plan (straight, or RRTConnect around perceived obstacles) and execute; returns the move
        status. Without ``collision_check`` the straight joint path is followed as is (deliberate
        contact). ``target_poses`` ({arm: (4, 4) sim-world grasp-site pose}) is what REACHED is judged
        against; by default the forward kinematics of ``goals``."""
        adapter = self.adapter
        planner = self.planners.get(adapter)
        arms = sorted(goals)
        forces_before = self._sensed_forces(arms)
        start_qpos = adapter.robot_qpos()
        targets = dict(target_poses or {})
        targets.update({a: T for a, T in planner.site_poses(goals).items() if a not in targets})
        if collision_check:
            plan = planner.plan(start_qpos, goals, self._scene(), self._describe_hit)
        else:
            plan = MotionPlan(True, "straight_unchecked", [goals])
        ctx.artifact(
            "plan",
            {
                "method": plan.method,
                "planning_ms": plan.planning_ms,
                "collision_checks": plan.checks,
                "waypoints": [{f"arm{a}": np.round(q, 4).tolist() for a, q in wp.items()} for wp in plan.waypoints],
                **({"blocked_by": plan.collision} if plan.collision else {}),
            },
        )
        if self.scene3d is not None:
            self.scene3d.guard("motion", self._scene3d_motion, start_qpos, goals, plan, targets)
        if not plan.ok:
            ctx.set_status(st.PLANNING_ERROR, f"{plan.message}: {plan.collision}" if plan.collision else plan.message)
            self._motion_overlay(ctx, start_qpos, goals, plan, target_positions, "no path")
            return st.PLANNING_ERROR
        steps = 0
        for i, waypoint in enumerate(plan.waypoints):
            last = i == len(plan.waypoints) - 1
            distance = max(float(np.abs(q - adapter.joint_positions(a)).max()) for a, q in waypoint.items())
            steps += adapter.drive_joints(
                waypoint,
                max_steps=int(distance / adapter.JOINT_STEP) + (60 if last else 20),
                tol=2e-3 if last else WAYPOINT_TOL,
                settle=last,
            )
        reached = {}
        for arm in arms:
            now = adapter.ee_pose(arm)
            reached[arm] = {
                "position": np.round(geo.transform_points(self._T_api_sim, now[:3, 3])[0], 4).tolist(),
                "position_error_m": round(float(np.linalg.norm(now[:3, 3] - targets[arm][:3, 3])), 5),
                "orientation_error_rad": round(geo.rotation_angle(now[:3, :3], targets[arm][:3, :3]), 4),
                "joint_error_rad": round(float(np.abs(goals[arm] - adapter.joint_positions(arm)).max()), 5),
            }
        ctx.artifact("motion", {"control_steps": steps, **{f"arm{a}": r for a, r in reached.items()}})
        if plan.method == "rrt_connect":
            self._motion_overlay(ctx, start_qpos, goals, plan, target_positions, "planned path")
        short = {
            a: r
            for a, r in reached.items()
            if r["position_error_m"] > POSITION_TOL
            or r["orientation_error_rad"] > ORIENTATION_TOL
            or r["joint_error_rad"] > JOINT_TOL
        }
        if not short:
            return st.REACHED
        where = "; ".join(
            f"arm{a} stopped at {r['position']} m, {r['position_error_m'] * 1000:.1f} mm and "
            f"{r['orientation_error_rad']:.3f} rad from the target pose (max joint error "
            f"{r['joint_error_rad']:.3f} rad)"
            for a, r in short.items()
        )
        forces = self._sensed_forces(arms)
        felt = {
            link: force
            for link, force in forces.items()
            if force - forces_before.get(link, 0.0) > CONTACT_FORCE_N and int(link.split()[0][3:]) in short
        }
        if felt:
            ctx.artifact("contact", {link: round(f, 1) for link, f in felt.items()})
            ctx.set_status(
                st.COLLISION,
                f"{where}; stopped by contact: "
                + ", ".join(
                    f"{link} {f:.1f} N external force" for link, f in sorted(felt.items(), key=lambda x: -x[1])
                ),
            )
            return st.COLLISION
        ctx.set_status(
            st.NOT_REACHED,
            f"{where} (tolerance {POSITION_TOL * 1000:.0f} mm / {ORIENTATION_TOL} rad / {JOINT_TOL} rad)",
        )
        return st.NOT_REACHED

    def _scene3d_motion(self, start_qpos, goals, plan, targets) -> None:
        """The 3D view's record of a motion: each arm's target grasp-point pose and the planned path of
        its grasp point (forward kinematics along each straight joint segment), world frame."""
        planner = self.planners.get(self.adapter)
        configs = [{arm: start_qpos[planner.qpos_indexes[arm]] for arm in goals}] + list(plan.waypoints or [])
        paths: dict[int, list] = {arm: [] for arm in goals}
        if plan.ok:
            samples = np.linspace(0.0, 1.0, PLAN_SEGMENT_SAMPLES)
            for i, (a, b) in enumerate(zip(configs[:-1], configs[1:])):
                for s in samples[1:] if i else samples:
                    joints = {arm: a[arm] + s * (b[arm] - a[arm]) for arm in goals if arm in a and arm in b}
                    for arm, p in planner.tcp_positions(start_qpos, joints).items():
                        paths[arm].append(p)
        to_api = self._T_api_sim
        self.scene3d.motion(
            {arm: self._to_api(T) @ SITE_TO_API for arm, T in targets.items() if arm in goals},
            {arm: geo.transform_points(to_api, np.array(p)) for arm, p in paths.items() if p},
            plan.method,
            plan.ok,
        )

    def _motion_overlay(self, ctx: CallContext, start_qpos, goals, plan, target_positions, title: str) -> None:
        """The planned grasp-point path (from where the move started) and the target, drawn on the
        last image of the keyframe camera."""
        frame = self._latest_frame(self.spec.keyframe_camera)
        if frame is None:
            return
        planner = self.planners.get(self.adapter)
        start = {arm: start_qpos[planner.qpos_indexes[arm]] for arm in goals}
        tcp = [planner.tcp_positions(start_qpos, wp) for wp in [start] + (plan.waypoints or [goals])]
        camera_pose = frame.pose  # sim world frame, like the positions below
        points = {arm: np.array([p[arm] for p in tcp]) for arm in goals}
        targets = {
            arm: (self._to_sim(geo.make_transform(t))[:3, 3] if t is not None else None)
            for arm, t in (target_positions or {}).items()
        }
        ctx.keyframe(
            lambda: draw_path(frame.rgb, frame.intrinsics, camera_pose, points, targets, title),
            "overlay",
            frame.camera,
            "path",
        )

    def _move_to_pose(self, ctx: CallContext, arm: int, position, quaternion_wxyz, collision_check: bool) -> str:
        joints = self._solve_ik(ctx, arm, position, quaternion_wxyz)
        if joints is None:
            return st.IK_FAILED
        return self._move(
            ctx,
            {arm: joints},
            {arm: np.asarray(position, dtype=np.float64)},
            bool(collision_check),
            {arm: self._site_target(position, quaternion_wxyz)},
        )

    def _site_target(self, position, quaternion_wxyz) -> np.ndarray:
        """(4, 4) sim-world grasp-site pose of an API-frame grasp-point pose."""
        return self._to_sim(geo.make_transform(position, quaternion_wxyz)) @ API_TO_SITE

    def _gripper(self, ctx: CallContext, arm: int, close: bool) -> float:
        arm = self._arm(arm)
        width = self.adapter.actuate_gripper(arm, close)
        info = {"arm": arm, "width_m": round(width, 5), "closed": close}
        # What the gripper holds, for the planner: the perceived points between the fingers now.
        planner = self.planners.get(self.adapter)
        site = planner.site_poses({arm: self.adapter.joint_positions(arm)})[arm]
        if close and width >= EMPTY_GRIPPER_WIDTH:
            self._holding()[arm] = True
            info["carried_points"] = self._scene().grasp(arm, site, width)
        else:
            self._holding()[arm] = False
            self._scene().release(arm, site)
        ctx.artifact("gripper", info)
        if close and width < EMPTY_GRIPPER_WIDTH:
            ctx.set_status(st.GRASP_EMPTY, f"the gripper closed to {width * 1000:.1f} mm: nothing between the fingers")
        return width

    # -- IK ----------------------------------------------------------------------------------------
    @primitive()
    def solve_ik(self, ctx: CallContext, position, quaternion_wxyz):
        """Inverse kinematics for the grasp point of arm 0.

        Args:
            position: (3,) target position of the grasp point in world frame, metres.
            quaternion_wxyz: (4,) target orientation [w, x, y, z] in world frame (see module notes;
                [0, 1, 0, 0] points the gripper straight down).

        Returns:
            (7,) float64 joint angles in radians reaching the pose within 1 mm / 0.01 rad (the
            solver's tolerance), or None when no start found one (status IK_FAILED). The solver is
            local (differential IK, mink): it starts from the current configuration, then with the
            last joint turned by +-pi, then from the home posture, so a pose reachable only in a very
            different arm posture can be missed. The trace's "ik" artifact gives the residuals, the
            tolerance, the starts tried and the joints sitting at a limit; an IK_FAILED message says
            which joints bound the closest attempt.

        Raises:
            ValueError: wrong shapes or non-finite values.
        """
        return self._solve_ik(ctx, 0, position, quaternion_wxyz)

    @primitive()
    def solve_ik_arm0(self, ctx: CallContext, position, quaternion_wxyz):
        """solve_ik for arm 0 (robot0). Same arguments, frames and return value as solve_ik."""
        return self._solve_ik(ctx, 0, position, quaternion_wxyz)

    @primitive(min_arms=2)
    def solve_ik_arm1(self, ctx: CallContext, position, quaternion_wxyz):
        """solve_ik for arm 1 (robot1). The target is given in the same world frame (robot0's base);
        returns robot1's (7,) joint angles or None (IK_FAILED)."""
        return self._solve_ik(ctx, 1, position, quaternion_wxyz)

    # -- joint moves -------------------------------------------------------------------------------
    @primitive(after_frame=True)
    def move_to_joints(self, ctx: CallContext, joints, collision_check: bool = True) -> str:
        """Move arm 0 to a joint configuration (blocking), holding the gripper's current command.

        The straight joint-space path is checked first against what the cameras have seen: the
        occupied space fused from this episode's get_observation depth images (each camera's latest
        image; the robot's own points and what a closed gripper holds are accounted for). Objects no
        camera has seen are not avoided. When the path is blocked, a free path is planned (RRTConnect)
        and followed. Speed up to 1 rad/s.

        Args:
            joints: (7,) joint angles in radians, within the arm's joint limits.
            collision_check: False skips the check and the planning and follows the straight path:
                for deliberate contact (pushing a drawer shut, wiping), which a static collision check
                would refuse. Contact that stops the arm is still reported.

        Returns:
            "REACHED" (the grasp point within 5 mm and 0.05 rad of the target pose, the joints within
            0.02 rad); "PLANNING_ERROR" (the target is in occupied space or no path was found; the
            arm does not move; the message names the arm link, the point in metres and the camera
            that saw it); "COLLISION" (the arm stopped short and a link felt contact: the message
            gives the pose reached, the link and the external force in newtons) or "NOT_REACHED"
            (stopped short without contact: the message gives the pose reached and the error).

        Raises:
            ValueError: wrong shape, None (from a failed solve_ik) or a joint outside its limits.
        """
        return self._move(ctx, {0: self._check_joints(0, joints)}, collision_check=bool(collision_check))

    @primitive(after_frame=True)
    def move_to_joints_arm0(self, ctx: CallContext, joints, collision_check: bool = True) -> str:
        """move_to_joints for arm 0 (robot0)."""
        return self._move(ctx, {0: self._check_joints(0, joints)}, collision_check=bool(collision_check))

    @primitive(after_frame=True, min_arms=2)
    def move_to_joints_arm1(self, ctx: CallContext, joints, collision_check: bool = True) -> str:
        """move_to_joints for arm 1 (robot1); arm 0 holds its position."""
        return self._move(ctx, {1: self._check_joints(1, joints)}, collision_check=bool(collision_check))

    @primitive(after_frame=True, min_arms=2)
    def move_to_joints_both(self, ctx: CallContext, joints0, joints1, collision_check: bool = True) -> str:
        """Move both arms at once (blocking), each along its straight joint-space line, planning around
        collisions (including between the arms) in the 14-D joint space when needed.

        Args:
            joints0: (7,) arm 0 joint angles, radians. joints1: (7,) arm 1 joint angles, radians.

        Returns:
            Same statuses as move_to_joints.
        """
        return self._move(
            ctx,
            {0: self._check_joints(0, joints0, "joints0"), 1: self._check_joints(1, joints1, "joints1")},
            collision_check=bool(collision_check),
        )

    # -- pose moves --------------------------------------------------------------------------------
    @primitive(after_frame=True)
    def move_to_pose(self, ctx: CallContext, position, quaternion_wxyz, collision_check: bool = True) -> str:
        """Move arm 0's grasp point to a pose: solve_ik, then a collision-checked move_to_joints.

        Args:
            position: (3,) world-frame position in metres. quaternion_wxyz: (4,) [w, x, y, z].
            collision_check: see move_to_joints (False for deliberate contact such as pushing).

        Returns:
            "REACHED", "IK_FAILED" (no joint solution; the arm does not move), "PLANNING_ERROR",
            "COLLISION" or "NOT_REACHED" (see move_to_joints).
        """
        return self._move_to_pose(ctx, 0, position, quaternion_wxyz, collision_check)

    @primitive(after_frame=True)
    def move_to_pose_arm0(self, ctx: CallContext, position, quaternion_wxyz, collision_check: bool = True) -> str:
        """move_to_pose for arm 0 (robot0)."""
        return self._move_to_pose(ctx, 0, position, quaternion_wxyz, collision_check)

    @primitive(after_frame=True, min_arms=2)
    def move_to_pose_arm1(self, ctx: CallContext, position, quaternion_wxyz, collision_check: bool = True) -> str:
        """move_to_pose for arm 1 (robot1); the target is in the world frame (robot0's base)."""
        return self._move_to_pose(ctx, 1, position, quaternion_wxyz, collision_check)

    @primitive(after_frame=True, min_arms=2)
    def move_to_pose_both(
        self, ctx: CallContext, position0, quaternion0_wxyz, position1, quaternion1_wxyz, collision_check: bool = True
    ) -> str:
        """Move both arms' grasp points to poses at once (blocking): both IK solutions first, then one
        move_to_joints_both. For carrying an object held by both grippers, which moving one arm at a
        time would tilt or pull apart.

        Args:
            position0, position1: (3,) world-frame positions in metres (robot0's base frame for both arms).
            quaternion0_wxyz, quaternion1_wxyz: (4,) orientations [w, x, y, z] in the world frame.
            collision_check: see move_to_joints.

        Returns:
            "REACHED", "IK_FAILED" (either arm has no solution; neither moves; the trace names the arm),
            "PLANNING_ERROR", "COLLISION" or "NOT_REACHED" (see move_to_joints).
        """
        joints0 = self._solve_ik(ctx, 0, position0, quaternion0_wxyz, "ik_arm0")
        if joints0 is None:
            return st.IK_FAILED
        joints1 = self._solve_ik(ctx, 1, position1, quaternion1_wxyz, "ik_arm1")
        if joints1 is None:
            return st.IK_FAILED
        targets = {0: np.asarray(position0, dtype=np.float64), 1: np.asarray(position1, dtype=np.float64)}
        poses = {0: self._site_target(position0, quaternion0_wxyz), 1: self._site_target(position1, quaternion1_wxyz)}
        return self._move(ctx, {0: joints0, 1: joints1}, targets, bool(collision_check), poses)

    # -- grippers ----------------------------------------------------------------------------------
    @primitive(after_frame=True)
    def open_gripper(self, ctx: CallContext) -> float:
        """Open arm 0's gripper fully (blocking). Returns the finger opening in metres (Panda: about 0.08).

        Raises:
            ValueError: the arm has no fingers (e.g. the Wipe task's wiping tool).
        """
        return self._gripper(ctx, 0, close=False)

    @primitive(after_frame=True)
    def close_gripper(self, ctx: CallContext) -> float:
        """Close arm 0's gripper until the fingers stop (blocking).

        Returns:
            Finger opening in metres: about the object's width when something is held, under 0.005
            when the fingers closed on nothing (the trace marks that GRASP_EMPTY).

        Raises:
            ValueError: the arm has no fingers.
        """
        return self._gripper(ctx, 0, close=True)

    @primitive(after_frame=True)
    def open_gripper_arm0(self, ctx: CallContext) -> float:
        """open_gripper for arm 0 (robot0)."""
        return self._gripper(ctx, 0, close=False)

    @primitive(after_frame=True)
    def close_gripper_arm0(self, ctx: CallContext) -> float:
        """close_gripper for arm 0 (robot0)."""
        return self._gripper(ctx, 0, close=True)

    @primitive(after_frame=True, min_arms=2)
    def open_gripper_arm1(self, ctx: CallContext) -> float:
        """open_gripper for arm 1 (robot1)."""
        return self._gripper(ctx, 1, close=False)

    @primitive(after_frame=True, min_arms=2)
    def close_gripper_arm1(self, ctx: CallContext) -> float:
        """close_gripper for arm 1 (robot1)."""
        return self._gripper(ctx, 1, close=True)
