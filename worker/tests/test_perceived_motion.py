"""Motion against the perceived world, on real MuJoCo: what no camera saw does not exist for the
planner, what one saw blocks with a point and a camera, held objects ride along, contact is reported
as a link and a force, moves that end short say NOT_REACHED, and no message names the simulator."""

import json
import re
import time

import mujoco
import numpy as np

from worker.engine import EngineSettings, run_episode, simulators
from worker.events import MemorySink
from worker.robot import status as st
from worker.robot.api import RobotAPI
from worker.robot.occupancy import PerceivedScene
from worker.robot.tracer import Tracer
from worker.sim.catalog import get_task

from .test_robot_api import PICK

SWEEP = """
q = np.array([0.0, 0.0, 1.0, 0.0])
c = np.array({c})
print(move_to_pose([c[0], c[1] - 0.15, c[2]], q))
print(move_to_pose([c[0], c[1] + 0.15, c[2]], q))
"""


def episode(task, program, seed):
    sink = MemorySink()
    result = run_episode(get_task(task), program, seed, sink, EngineSettings(), None)
    return result, sink.episodes[0]["calls"]


def sim_names(task) -> list[str]:
    """Every body, geom and joint name of the task's MuJoCo model."""
    adapter, *_ = simulators().get(get_task(task))
    model = adapter.sim.model._model
    names = []
    for kind, count in (
        (mujoco.mjtObj.mjOBJ_BODY, model.nbody),
        (mujoco.mjtObj.mjOBJ_GEOM, model.ngeom),
        (mujoco.mjtObj.mjOBJ_JOINT, model.njnt),
    ):
        names += [n for n in (mujoco.mj_id2name(model, kind, i) for i in range(count)) if n]
    return names


def assert_no_sim_names(task, calls):
    names = sim_names(task)
    assert "cubeB_main" in names or "cube_main" in names  # the check looks at the right model
    for call in calls:
        text = call.message + " " + json.dumps(call.artifacts, default=str)
        leaked = [n for n in names if n in text]
        assert not leaked, (call.primitive, leaked, text[:500])


def api_position(task, seed, body) -> np.ndarray:
    """A body's position in the API frame (robot0 base) right after the episode's reset: test-side
    ground truth, never shown to the program."""
    adapter, *_ = simulators().get(get_task(task))
    adapter.reset(seed)
    sim = adapter.sim
    world = np.array(sim.data.body_xpos[sim.model.body_name2id(body)])
    return np.linalg.inv(adapter.base_pose()) @ np.append(world, 1.0)


def test_an_object_no_camera_saw_does_not_block_the_plan():
    # unknown_space="free" (the default): the green cube, never observed, is not in the planner's
    # world; the straight sweep through it is planned as straight and the arm meets it for real.
    c = api_position("robosuite:Stack", 3, "cubeB_main")[:3]
    result, calls = episode("robosuite:Stack", SWEEP.format(c=np.round(c, 4).tolist()), 3)
    assert result.status == st.OK, result.error
    moves = [call for call in calls if call.primitive == "move_to_pose"]
    assert [m.artifacts["plan"]["method"] for m in moves] == ["straight", "straight"]
    assert all("blocked_by" not in m.artifacts["plan"] for m in moves)
    assert st.PLANNING_ERROR not in result.stdout
    assert_no_sim_names("robosuite:Stack", calls)


def test_an_observed_obstacle_is_planned_around_and_named_by_point_and_camera():
    c = api_position("robosuite:Stack", 3, "cubeB_main")[:3]
    program = "get_observation()\n" + SWEEP.format(c=np.round(c, 4).tolist())
    result, calls = episode("robosuite:Stack", program, 3)
    moves = [call for call in calls if call.primitive == "move_to_pose"]
    assert result.stdout.split() == ["REACHED", "REACHED"], (result.stdout, [m.message for m in moves])
    plan = moves[1].artifacts["plan"]
    assert plan["method"] == "rrt_connect"
    match = re.match(
        r"arm0 ([a-z0-9 ]+) would meet occupied space at (\[[^\]]+\]) m, seen by camera (\w+), "
        r"(-?[0-9.]+) m above the support surface$",
        plan["blocked_by"],
    )
    assert match, plan["blocked_by"]
    point = np.array(json.loads(match.group(2)))
    # The perceived point lies on the cube (5 cm across), not somewhere else in the scene.
    assert np.linalg.norm(point - c) < 0.05, (point, c)
    assert match.group(3) in get_task("robosuite:Stack").cameras
    # The cube stands on the table: the point is above the support surface by at most the cube's height.
    assert 0.01 < float(match.group(4)) < 0.06, plan["blocked_by"]
    assert_no_sim_names("robosuite:Stack", calls)


def test_a_held_object_is_carried_and_checked_against_the_perceived_table():
    program = PICK.format(prompt="cube") + (
        "print('into table', move_to_pose(g['position'] + np.array([0.05, 0, -0.03]), g['quaternion_wxyz']))\n"
    )
    result, calls = episode("robosuite:Lift", program, 4)
    assert "lift REACHED" in result.stdout, result.stdout
    assert "into table PLANNING_ERROR" in result.stdout
    grasp = [c for c in calls if c.primitive == "close_gripper"][0]
    assert grasp.artifacts["gripper"]["carried_points"] >= 20
    refused = calls[-1]
    assert refused.message.startswith("the target configuration is in occupied space: the object held by arm0")
    # The point it would meet is on the table top, below where the cube was grasped.
    point = np.array(json.loads(re.search(r"at (\[[^\]]+\]) m", refused.message).group(1)))
    cube = api_position("robosuite:Lift", 4, "cube_main")[:3]
    assert -0.04 < point[2] - cube[2] < 0.0 and np.linalg.norm(point[:2] - cube[:2]) < 0.1, (point, cube)
    assert_no_sim_names("robosuite:Lift", calls)


def test_contact_during_a_move_reports_the_link_and_the_force():
    program = """
get_observation()
q = np.array([0.0, 0.0, 1.0, 0.0])
print(move_to_pose([0.5, 0.0, -0.125], q))
print(move_to_pose([0.5, 0.0, -0.125], q, collision_check=False))
"""
    result, calls = episode("robosuite:Lift", program, 5)
    assert result.stdout.split() == ["PLANNING_ERROR", "COLLISION"], result.stdout
    pushed = calls[-1]
    assert pushed.status == st.COLLISION
    match = re.search(
        r"stopped by contact: arm0 (link\d|hand|left finger|right finger) ([\d.]+) N external force", pushed.message
    )
    assert match, pushed.message
    assert float(match.group(2)) > 5.0
    assert pushed.artifacts["contact"] and all(f > 5.0 for f in pushed.artifacts["contact"].values())
    assert "stopped at [" in pushed.message
    assert_no_sim_names("robosuite:Lift", calls)


def test_a_move_that_stops_short_reports_not_reached_with_the_pose(monkeypatch):
    # The controller is cut off after a few control steps (as a slow or stalled arm would be): the arm
    # ends centimetres from the target in free air, with no contact.
    adapter, *_ = simulators().get(get_task("robosuite:Lift"))
    drive = adapter.drive_joints
    monkeypatch.setattr(adapter, "drive_joints", lambda targets, max_steps, **kw: drive(targets, 3, **kw))
    program = """
p = get_observation([])["robot0_cartesian_pos"]
print(move_to_pose(p[:3] + np.array([0.0, 0.0, 0.2]), p[3:7]))
print(np.round(get_observation([])["robot0_cartesian_pos"][:3], 4).tolist())
"""
    result, calls = episode("robosuite:Lift", program, 1)
    lines = result.stdout.strip().split("\n")
    assert lines[0] == "NOT_REACHED", result.stdout
    move = calls[1]
    match = re.match(r"arm0 stopped at (\[[^\]]+\]) m, ([\d.]+) mm and ([\d.]+) rad from the target pose", move.message)
    assert match, move.message
    assert np.allclose(json.loads(match.group(1)), json.loads(lines[1]), atol=0.002)
    assert float(match.group(2)) > 5.0
    motion = move.artifacts["motion"]["arm0"]
    assert motion["position_error_m"] > 0.005 and motion["position"] == json.loads(match.group(1))


def test_a_configuration_check_takes_about_a_millisecond():
    spec = get_task("robosuite:Lift")
    adapter, ik, planners, segmenter = simulators().get(spec)
    adapter.reset(4)
    tracer = Tracer(
        enabled=False, media=None, emit=lambda r: None, capture_frame=lambda: (None, ""), sim_time=adapter.sim_time
    )
    api = RobotAPI(adapter, tracer, ik=ik, planners=planners, segmenter=segmenter)
    api.dispatch("get_observation", [], {})
    scene = api._scene()
    assert len(scene.cloud()[0]) > 10_000  # three cameras' worth of table, cube and walls
    planner = planners.get(adapter)
    q0 = adapter.joint_positions(0)
    planner.robot.set_config({0: q0})
    samples, _, _ = planner._samples([0], scene)
    obstacles = scene.obstacles(samples)
    rng = np.random.default_rng(0)
    configs = [q0 + rng.uniform(-0.4, 0.4, 7) for _ in range(300)]
    started = time.perf_counter()
    for q in configs:
        planner.robot.set_config({0: q})
        s, clearances, _ = planner._samples([0], scene)
        obstacles.first_hit(s, clearances)
    per_check = (time.perf_counter() - started) / len(configs)
    # About 0.3-0.6 ms on a loaded 2-core CPU (module docstring of worker.robot.motion); 3 ms leaves
    # room for a slower machine while catching a check that scales with the whole cloud.
    assert per_check < 0.003, per_check


def test_unknown_space_can_count_as_occupied():
    spec = get_task("robosuite:Lift")
    adapter, ik, planners, segmenter = simulators().get(spec)
    adapter.reset(1)
    tracer = Tracer(
        enabled=False, media=None, emit=lambda r: None, capture_frame=lambda: (None, ""), sim_time=adapter.sim_time
    )
    api = RobotAPI(adapter, tracer, ik=ik, planners=planners, segmenter=segmenter)
    api.unknown_space = "occupied"
    before = [
        api.dispatch("move_to_pose", [[0.5, 0.0, 0.1], [0, 1, 0, 0]], {}),
    ]
    assert before == [st.PLANNING_ERROR]  # nothing observed yet: everything but the robot is unknown
    api.dispatch("get_observation", [["agentview"]], {})
    scene = api._scene()
    frame = api._latest_frame("agentview")
    base = api._to_sim(np.eye(4))[:3, 3]  # robot0 base; the table top is about 11 cm below it
    camera = frame.pose[:3, 3]
    in_front = camera + 0.5 * (base + np.array([0.5, 0.0, -0.05]) - camera)
    under_table = base + np.array([0.3, 0.0, -0.3])
    assert scene.unknown(np.array([in_front, under_table])).tolist() == [False, True]
    try:
        PerceivedScene(np.zeros((1, 3)), "maybe")
    except ValueError as exc:
        assert "unknown_space" in str(exc)
    else:
        raise AssertionError("an unknown unknown_space was accepted")
