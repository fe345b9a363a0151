"""The motion planner's RobotModel is the robot's own description (its MJCF: arm, mount, gripper), as a
real robot's planner is built from its URDF: it holds no scene object, never reads the simulator, and
its kinematics are the simulator's to within rounding for the same joint angles."""

import mujoco
import numpy as np
import pytest

from worker.engine import simulators
from worker.robot.motion import PlannerCache, RobotModel, contact_forces
from worker.sim.catalog import get_task

TASKS = (
    "robosuite:Lift",
    "robosuite:TwoArmLift",
    "libero:libero_90/KITCHEN_SCENE10_close_the_top_drawer_of_the_cabinet",
)


class NoSimAdapter:
    """An adapter with the real robots whose simulator cannot be reached."""

    def __init__(self, adapter):
        self._adapter = adapter

    @property
    def robots(self):
        return self._adapter.robots

    def grip_site(self, arm: int = 0) -> str:
        return self._adapter.grip_site(arm)

    def __getattr__(self, name):
        raise AssertionError(f"the robot model read adapter.{name}")


def names(model, kind) -> set[str]:
    count = {mujoco.mjtObj.mjOBJ_BODY: model.nbody, mujoco.mjtObj.mjOBJ_GEOM: model.ngeom}[kind]
    return {mujoco.mj_id2name(model, kind, i) or "" for i in range(count)} - {""}


@pytest.fixture(scope="module", params=TASKS)
def built(request):
    adapter, *_ = simulators().get(get_task(request.param))
    adapter.reset(1)
    return adapter, RobotModel.from_adapter(NoSimAdapter(adapter))


def test_the_planner_model_holds_only_the_robots(built):
    adapter, robot = built
    sim = adapter.sim.model._model
    body = mujoco.mjtObj.mjOBJ_BODY
    prefixes = tuple(
        prefix for r in adapter.robots for prefix in (r.robot_model.naming_prefix, r.gripper.naming_prefix, "mount")
    )
    mine, theirs = names(robot.model, body) - {"world"}, names(sim, body) - {"world"}
    assert mine <= theirs
    assert all(n.startswith(prefixes) for n in mine), sorted(mine)
    scene = theirs - mine
    assert scene and not scene & mine  # the scene's objects (table, cube, cabinet...) are not there
    # Every robot body and geom of the simulator is in the robot's model, and nothing else.
    robot_bodies = {
        n
        for n in theirs
        if sim.body_rootid[sim.body(n).id] in [sim.body(r.robot_model.root_body).id for r in adapter.robots]
    }
    assert mine == robot_bodies
    geoms = names(robot.model, mujoco.mjtObj.mjOBJ_GEOM)
    assert len(geoms) == robot.model.ngeom and (robot.owner >= 0).all()
    for name in geoms:
        g, s = robot.model.geom(name), sim.geom(name)
        assert g.type == s.type and np.allclose(g.size, s.size) and np.allclose(g.pos, s.pos)
        assert np.allclose(g.quat, s.quat) and g.contype == s.contype and g.conaffinity == s.conaffinity
        if g.type == mujoco.mjtGeom.mjGEOM_MESH:
            a, b = robot.model.mesh(g.dataid[0]), sim.mesh(s.dataid[0])
            va = robot.model.mesh_vert[a.vertadr[0] : a.vertadr[0] + a.vertnum[0]]
            vb = sim.mesh_vert[b.vertadr[0] : b.vertadr[0] + b.vertnum[0]]
            assert np.array_equal(va, vb)
    for arm in range(len(adapter.robots)):
        assert np.array_equal(robot.joint_limits(arm), adapter.joint_limits(arm))


def test_forward_kinematics_match_the_simulator(built):
    adapter, robot = built
    model, data = adapter.sim.model._model, mujoco.MjData(adapter.sim.model._model)
    data.qpos[:] = adapter.sim.data.qpos
    rng = np.random.default_rng(0)
    for _ in range(5):
        joints = {a: rng.uniform(*robot.joint_limits(a).T) for a in range(robot.arms)}
        qpos = adapter.robot_qpos()
        for a, q in joints.items():
            qpos[robot.qpos_indexes[a]] = q
            data.qpos[robot.qpos_indexes[a]] = q
        for i in robot.finger_indexes:
            qpos[i] = data.qpos[i] = rng.uniform(*model.jnt_range[list(model.jnt_qposadr).index(i)])
        mujoco.mj_kinematics(model, data)
        robot.set_fingers(qpos)
        robot.set_config(robot.arm_joints(qpos))
        for a in range(robot.arms):
            site = model.site(adapter.grip_site(a)).id
            T = robot.site_pose(a)
            assert np.abs(T[:3, 3] - data.site_xpos[site]).max() < 1e-6
            assert np.abs(T[:3, :3] - data.site_xmat[site].reshape(3, 3)).max() < 1e-6
        for g in range(robot.model.ngeom):  # fingers included
            s = model.geom(robot.model.geom(g).name).id
            assert np.abs(robot.data.geom_xpos[g] - data.geom_xpos[s]).max() < 1e-6


def test_the_planner_never_reads_the_simulator(built):
    adapter, _ = built
    cache = PlannerCache()
    planner = cache.get(NoSimAdapter(adapter))
    assert set(planner.limits) == set(range(len(adapter.robots)))
    assert planner.robot.labels and all(label.startswith("arm") for label in planner.robot.labels)
    # The cache rebuilds only when the robots change (a hard reset builds new robot models).
    assert cache.get(NoSimAdapter(adapter)) is planner


def test_sensed_contact_forces_are_named_by_link(built):
    adapter, robot = built
    # Name-matched: every simulator contact on a robot geom maps to that geom in the robot's model.
    forces = contact_forces(adapter.sim.model._model, adapter.sim.data._data, robot, list(range(len(adapter.robots))))
    assert all(label in robot.labels for label in forces)
