"""Programs run in a sandbox process; every ending becomes an outcome and the host survives it."""

import os
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
