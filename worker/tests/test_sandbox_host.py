"""Programs run in a sandbox process; every ending becomes an outcome and the host survives it."""

import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from worker.sandbox import host
from worker.sandbox.host import ApiError, SandboxLimits, Status, run_program

API = [
    {"name": "get_observation", "doc": "observation"},
    {"name": "solve_ik", "doc": "ik"},
    {"name": "crash_me", "doc": ""},
]
SECRET = "sk-ant-this-must-not-leak"
CRASHED = []


def _ppid(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return 0


def sandbox_children():
    """Python interpreters running child.py below this process (inside bubblewrap, or plain)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not (b"python" in argv[0] and any(arg.endswith(b"child.py") for arg in argv)):
            continue
        pid = int(entry.name)
        while pid > 1 and pid != os.getpid():
            pid = _ppid(pid)
        if pid == os.getpid():
            pids.append(int(entry.name))
    return pids


def dispatch(name, args, kwargs, line, stack):
    if name == "get_observation":
        return {"agentview": {"images": {"rgb": np.zeros((8, 8, 3), np.uint8)}}, "line": line, "stack": stack}
    if name == "solve_ik":
        if len(args) != 2:
            raise ValueError("solve_ik needs position and quaternion_wxyz")
        raise ApiError("no IK solution", "RobotAPIError")
    if name == "crash_me":
        for pid in sandbox_children():
            os.kill(pid, signal.SIGSEGV)
            CRASHED.append(pid)
        time.sleep(0.2)
        return None
    raise AssertionError(name)


def run(source, **limits):
    return run_program(source, API, dispatch, SandboxLimits(**{"wall_seconds": 5, "memory_mb": 512, **limits}))


def test_it_runs_a_program_and_serves_its_api_calls():
    out = run(
        "obs = get_observation()\nrgb = obs['agentview']['images']['rgb']\nrgb[0, 0] = 7\nprint(rgb.sum(), obs['line'])"
    )
    assert out.status == Status.OK, out.error
    assert out.stdout.strip() == "21 1"
    assert out.api_calls == 1


def test_it_reports_the_program_call_stack_with_each_call():
    out = run("def helper():\n    return get_observation()\n\nprint(helper()['stack'])")
    assert out.stdout.strip() == "[['<module>', 4], ['helper', 2]]"


@pytest.mark.parametrize(
    "source, line",
    [
        ("import os\nprint(os.environ)", 1),
        ("x = 1\ndata = open('/etc/passwd').read()", 2),
        ("sub = ().__class__.__base__.__subclasses__()", 1),
        ("g = get_observation.__globals__", 1),
        ("b = print.__self__", 1),
        ("g = getattr(get_observation, '__globals__')", 1),
        ("f = (x for x in [1]).gi_frame.f_back", 1),
        ("np.load('/etc/passwd')", 1),
        ("ns = np.lib", 1),
    ],
)
def test_it_stops_programs_that_reach_outside_the_api(source, line):
    out = run(source)
    assert out.status == Status.POLICY_VIOLATION
    assert out.line == line
    assert f"line {line}:" in out.error


def test_a_caught_runtime_violation_still_fails_the_episode():
    out = run("try:\n    getattr(1, '__class__')\nexcept:\n    pass\nprint('went on')")
    assert out.status == Status.POLICY_VIOLATION
    assert out.line == 2


def test_it_stops_an_infinite_loop_and_keeps_serving():
    started = time.monotonic()
    out = run("while True:\n    pass", wall_seconds=1.5)
    assert out.status == Status.TIMEOUT
    assert "wall-clock limit of 1.5 s" in out.error
    assert time.monotonic() - started < 6
    assert not sandbox_children()
    assert run("print('next')").status == Status.OK


def test_the_wall_limit_covers_time_spent_in_api_calls():
    out = run("while True:\n    get_observation()", wall_seconds=1.0)
    assert out.status == Status.TIMEOUT
    assert out.api_calls > 1


def test_it_caps_memory():
    out = run("x = np.ones((40000, 40000))", memory_mb=400)
    assert out.status == Status.MEMORY_LIMIT
    assert "400 MiB" in out.error and out.line == 1


def test_it_reports_an_exception_with_the_program_line():
    out = run("a = 1\n\nb = a / 0\n")
    assert out.status == Status.EXCEPTION
    assert out.line == 3
    assert out.error.startswith("ZeroDivisionError: division by zero")
    assert "line 3: b = a / 0" in out.error


def test_it_reports_a_syntax_error_as_an_exception():
    out = run("def f(:\n    pass")
    assert out.status == Status.EXCEPTION and "SyntaxError" in out.error and out.line == 1


def test_api_errors_reach_the_program_as_exceptions_it_can_handle():
    out = run("try:\n    solve_ik([0, 0, 0], [1, 0, 0, 0])\nexcept RobotAPIError as e:\n    print('caught', e)")
    assert out.status == Status.OK and out.stdout.strip() == "caught no IK solution"
    out = run("solve_ik([0, 0, 0])")
    assert out.status == Status.EXCEPTION and out.error.startswith("ValueError: solve_ik: solve_ik needs position")


def test_unsendable_arguments_fail_the_call_not_the_host():
    out = run("get_observation(lambda: 1)")
    assert out.status == Status.EXCEPTION
    assert "cannot be passed" in out.error


def test_a_dead_sandbox_becomes_an_outcome():
    out = run("crash_me()\nprint('never')")
    assert CRASHED, "no sandbox interpreter was found to kill"
    assert out.status == Status.SANDBOX_CRASH
    assert "SIGSEGV" in out.error


def test_the_sandbox_process_gets_none_of_the_workers_environment(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    session = host._spawn()
    try:
        environ = Path(f"/proc/{session.proc.pid}/environ").read_bytes()
        assert SECRET.encode() not in environ
        assert b"REDIS_URL" not in environ and b"DJANGO" not in environ
    finally:
        host._kill(session)
        host._cleanup(session)
    # The OS boundary itself (files, sockets, processes, signals) is proven in test_sandbox_containment.py.


# -- scipy.spatial.transform and time ------------------------------------------------------------------------------

ROTATION_PROGRAM = """
import numpy as np
from scipy.spatial.transform import Rotation as R, Slerp
import scipy.spatial.transform
import time


def make_topdown_quat(yaw):
    m = R.from_euler("z", yaw).as_matrix() @ np.diag([1.0, -1.0, -1.0])
    q = R.from_matrix(m).as_quat()
    return [q[3], q[0], q[1], q[2]]


r = R.from_euler("xyz", [10, 20, 30], degrees=True)
print(r.as_quat().tolist())
print(r.as_matrix().tolist())
s = Slerp([0.0, 2.0], R.from_euler("z", [[0.0], [90.0]], degrees=True))
print(s([0.0, 1.0, 2.0]).as_euler("xyz", degrees=True).tolist())
print(np.array(make_topdown_quat(0.0)).tolist())
print(scipy.spatial.transform.Rotation is R, type(r) is R)
started = time.perf_counter()
time.sleep(0.05)
print(time.perf_counter() - started >= 0.05, time.monotonic() > 0, time.time() > 1e9)
"""


def test_a_program_uses_scipy_rotation_slerp_and_time():
    import ast

    from scipy.spatial.transform import Rotation

    out = run(ROTATION_PROGRAM)
    assert out.status == Status.OK, out
    quat, matrix, eulers, topdown, identity, clock = out.stdout.splitlines()
    expected = Rotation.from_euler("xyz", [10, 20, 30], degrees=True)
    assert np.allclose(ast.literal_eval(quat), expected.as_quat())
    assert np.allclose(ast.literal_eval(matrix), expected.as_matrix())
    assert np.allclose(ast.literal_eval(eulers), [[0, 0, 0], [0, 0, 45], [0, 0, 90]])
    assert np.allclose(np.abs(ast.literal_eval(topdown)), [0, 1, 0, 0])
    assert identity == "True True" and clock == "True True True"


@pytest.mark.parametrize(
    "source", ["import scipy", "from scipy import io", "import scipy.linalg", "import scipy.spatial"]
)
def test_other_scipy_imports_are_refused_naming_what_may_be_imported(source):
    out = run("import numpy as np\n" + source)
    assert out.status == Status.POLICY_VIOLATION
    assert out.line == 2 and "is not allowed: robot programs may import only numpy" in out.error
    assert "scipy.spatial.transform (Rotation and Slerp)" in out.error
    assert "time (time, perf_counter, monotonic, sleep)" in out.error


def test_names_scipy_transform_does_not_serve_are_refused():
    out = run("from scipy.spatial.transform import Rotation, RigidTransform")
    assert out.status == Status.POLICY_VIOLATION
    assert "scipy.spatial.transform has no name 'RigidTransform' available to robot programs" in out.error


PEEK = "from scipy.spatial.transform import Rotation\nr = Rotation.from_euler('z', 0.3)\n\n\ndef peek(self):\n"


@pytest.mark.parametrize(
    "source, line",
    [
        ("from scipy.spatial.transform import Rotation\ng = Rotation.from_quat.__globals__", 2),
        ("from scipy.spatial.transform import Rotation\nm = Rotation.identity()._xp", 2),
        ("from scipy.spatial.transform import Rotation\nm = getattr(Rotation.identity(), '_backend')", 2),
        ("from scipy.spatial.transform import Rotation\nm = getattr(type(Rotation.identity()), '_from_raw_quat')", 2),
        ("from scipy.spatial.transform import Rotation\nc = type(Rotation.identity().as_quat).__func__", 2),
        (PEEK + "    return self._xp\n\n\nprint(peek(r))", 6),
        (PEEK + "    return self._backend\n\n\nprint(peek(r))", 6),
        (PEEK + "    self._backend = self\n\n\npeek(r)", 6),
        (PEEK + "    return self._from_raw_quat\n\n\npeek(Rotation)", 6),
        (PEEK + "    return '{0._xp}'.format(self)\n\n\nprint(peek(r))", 6),
        (PEEK + "    return self._xp\n\n\ntry:\n    peek(r)\nexcept BaseException:\n    pass\nprint('went on')", 6),
    ],
)
def test_scipys_modules_are_out_of_reach_through_rotation(source, line):
    out = run(source)
    assert out.status == Status.POLICY_VIOLATION, out
    assert out.line == line
    assert "<module" not in out.stdout


def test_rotation_cannot_be_subclassed_to_shadow_its_private_attributes():
    out = run("from scipy.spatial.transform import Rotation\n\n\nclass Mine(Rotation):\n    _xp = None\n")
    assert out.status == Status.EXCEPTION
    assert "TypeError: Rotation cannot be subclassed in robot programs" in out.error


def test_a_sleep_counts_against_the_wall_limit():
    out = run("import time\ntime.sleep(30)", wall_seconds=1.0)
    assert out.status == Status.TIMEOUT


# -- program globals and the env stand-in --------------------------------------------------------------------------

GLOBALS_PROGRAM = """
depth = obs["agentview"]["images"]["depth"]
print(depth.shape, depth.dtype, obs["full_prompt"])
depth[0, 0, 0] = 7.0
print(sorted(INPUTS), INPUTS["robot0_joint_pos"], RESULT is None, APIS["FrankaLiberoApiReduced"])
print(env.handle.task_language)
print(env.task_language)
print(hasattr(env, "sim"), hasattr(env.handle, "env"), hasattr(type(env), "handle"))
print(hasattr(type(env), "task_language"))
print(hasattr(type(env.handle), "task_language"), hasattr(env.handle, "handle"))
RESULT = float(depth.sum())
print(RESULT)
"""


def _observation():
    return {
        "agentview": {
            "images": {"rgb": np.zeros((4, 5, 3), np.uint8), "depth": np.ones((4, 5, 1), np.float32)},
            "intrinsics": np.eye(3),
        },
        "full_prompt": "put the bowl on the plate",
    }


def test_program_globals_and_the_task_language_reach_the_program():
    out = run_program(
        GLOBALS_PROGRAM,
        API,
        dispatch,
        SandboxLimits(wall_seconds=5, memory_mb=512),
        program_globals={
            "obs": _observation(),
            "INPUTS": {"robot0_joint_pos": [0.0, 0.5], "full_prompt": "put the bowl on the plate"},
            "RESULT": None,
            "APIS": {"FrankaLiberoApiReduced": ["get_observation", "solve_ik"]},
        },
        task_facts={"task_language": "put the black bowl on the plate"},
    )
    assert out.status == Status.OK, out
    assert out.stdout.splitlines() == [
        "(4, 5, 1) float32 put the bowl on the plate",
        "['full_prompt', 'robot0_joint_pos'] [0.0, 0.5] True ['get_observation', 'solve_ik']",
        "put the black bowl on the plate",
        "put the black bowl on the plate",
        "False False False",
        "False",
        "False False",
        "26.0",
    ]


SIMULATOR_UNAVAILABLE = (
    "AttributeError: the simulator is not available to robot programs (camera-only API): "
    "env offers only env.handle.task_language"
)


@pytest.mark.parametrize(
    "source",
    [
        "env.sim",
        "env.handle.env",
        "env.handle.env.sim.data.qpos",
        "env.reset()",
        "env.handle.handle",
        "env.task_language = 'mine'",
        "env.handle.task_language = 'mine'",
        "type(env)('text').sim",
    ],
)
def test_the_env_stand_in_offers_only_the_task_language(source):
    out = run_program(source, API, dispatch, SandboxLimits(wall_seconds=5), task_facts={"task_language": "stack"})
    assert out.status == Status.EXCEPTION, out
    assert out.error.startswith(SIMULATOR_UNAVAILABLE) and out.line == 1


def test_without_task_facts_there_is_no_env():
    out = run("print(env)")
    assert out.status == Status.EXCEPTION and out.error.startswith("NameError")


@pytest.mark.parametrize(
    "program_globals, fragment",
    [
        ({"_private": 1}, "may not start with '_'"),
        ({"__builtins__": {}}, "may not start with '_'"),
        ({"print": 1}, "would shadow a builtin"),
        ({"open": 1}, "would shadow a builtin"),
        ({"len": 1}, "would shadow a builtin"),
        ({"np": 1}, "would shadow a builtin or a predefined name"),
        ({"math": 1}, "predefined name"),
        ({"env": {"handle": 1}}, "predefined name"),
        ({"RobotAPIError": 1}, "predefined name"),
        ({"self": 1}, "predefined name"),
        ({"get_observation": 1}, "would shadow the robot API function"),
        ({"not a name": 1}, "is not a Python identifier"),
        ({"class": 1}, "is not a Python identifier"),
        ({3: 1}, "is not a Python identifier"),
        ({"obs": object()}, "cannot be sent to the sandbox"),
        ({"obs": np.array(["text"])}, "cannot be sent to the sandbox"),
        ({"obs": np.zeros(65 * 1024 * 1024, np.uint8)}, "cannot be sent to the sandbox"),
        (["obs"], "must be a dict"),
    ],
)
def test_run_program_refuses_bad_program_globals(program_globals, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        run_program("print(1)", API, dispatch, program_globals=program_globals)
    assert not sandbox_children()


@pytest.mark.parametrize(
    "task_facts, fragment",
    [
        ({"task_language": 5}, "must be a string"),
        ({"task_language": "x" * 20_000}, "must be a string of at most"),
        ({"sim": "x"}, "unknown task facts sim"),
        ("stack the cubes", "must be a dict"),
    ],
)
def test_run_program_refuses_bad_task_facts(task_facts, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        run_program("print(1)", API, dispatch, task_facts=task_facts)


# -- exceptions a dispatch raises ----------------------------------------------------------------------------------

RAISED = {
    "assert": AssertionError("no grasp candidates"),
    "runtime": RuntimeError("IK did not converge"),
    "api-runtime": ApiError("IK failed", "RuntimeError"),
    "api-assert": ApiError("empty mask", "AssertionError"),
    "key": KeyError("agentview"),
    "recursion": RecursionError("maximum recursion depth exceeded"),
    "not-implemented": NotImplementedError("later"),
    "os": OSError("disk full"),
}

FAILING_PROGRAM = """
for kind in KINDS:
    try:
        solve_ik(kind)
    except AssertionError as exc:
        print(kind, "AssertionError", exc)
    except RuntimeError as exc:
        print(kind, "RuntimeError", exc)
    except KeyError as exc:
        print(kind, "KeyError", exc)
    except RobotAPIError as exc:
        print(kind, "RobotAPIError", exc)
"""


def test_assertion_and_runtime_errors_of_the_api_reach_the_program_as_themselves():
    def failing(name, args, kwargs, line, stack):
        raise RAISED[args[0]]

    out = run_program(FAILING_PROGRAM, API, failing, program_globals={"KINDS": list(RAISED)})
    assert out.status == Status.OK, out
    assert out.stdout.splitlines() == [
        "assert AssertionError solve_ik: no grasp candidates",
        "runtime RuntimeError solve_ik: IK did not converge",
        "api-runtime RuntimeError IK failed",
        "api-assert AssertionError empty mask",
        "key KeyError \"solve_ik: 'agentview'\"",
        "recursion RobotAPIError solve_ik failed: RecursionError: maximum recursion depth exceeded",
        "not-implemented RobotAPIError solve_ik failed: NotImplementedError: later",
        "os RobotAPIError solve_ik failed: OSError: disk full",
    ]


def test_an_uncaught_runtime_error_of_the_api_ends_the_program_with_it():
    def failing(name, args, kwargs, line, stack):
        raise RuntimeError("IK did not converge")

    out = run_program("x = 1\nsolve_ik([0, 0, 0], [1, 0, 0, 0])", API, failing)
    assert out.status == Status.EXCEPTION and out.line == 2
    assert out.error.startswith("RuntimeError: solve_ik: IK did not converge")
