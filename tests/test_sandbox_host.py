"""Programs run in a sandbox process; every ending becomes an outcome and the host survives it."""

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from worker.sandbox import host
from worker.sandbox.host import ApiError, SandboxLimits, Status, run_program

API = [{"name": "get_observation", "doc": "observation"}, {"name": "solve_ik", "doc": "ik"}, {"name": "crash_me", "doc": ""}]
SECRET = "sk-ant-this-must-not-leak"


def sandbox_children():
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"child.py" in cmd:
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
        time.sleep(0.2)
        return None
    raise AssertionError(name)


def run(source, **limits):
    return run_program(source, API, dispatch, SandboxLimits(**{"wall_seconds": 5, "memory_mb": 512, **limits}))


def test_it_runs_a_program_and_serves_its_api_calls():
    out = run("obs = get_observation()\nrgb = obs['agentview']['images']['rgb']\nrgb[0, 0] = 7\nprint(rgb.sum(), obs['line'])")
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
    assert out.status == Status.SANDBOX_CRASH
    assert "SIGSEGV" in out.error


def test_the_sandbox_process_gets_no_environment_and_an_empty_directory(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    session = host._spawn()
    try:
        environ = Path(f"/proc/{session.proc.pid}/environ").read_bytes()
        cwd = os.readlink(f"/proc/{session.proc.pid}/cwd")
        assert SECRET.encode() not in environ
        assert b"REDIS_URL" not in environ and b"DJANGO" not in environ
        assert os.listdir(cwd) == []
    finally:
        host._kill(session)
        host._cleanup(session)


def test_the_os_limits_block_files_and_sockets_even_without_the_policy_check(tmp_path):
    # The backstop under the AST check: after _apply_limits the process cannot open anything new.
    probe = f"""
import os, socket, sys
sys.path.insert(0, {str(Path(host.CHILD_PATH).parent)!r})
import child
child._apply_limits({{"memory_mb": 512, "cpu_seconds": 10}})
for attempt in (lambda: open("/etc/hostname"), lambda: open({str(tmp_path / "x")!r}, "w"), lambda: socket.socket()):
    try:
        attempt()
        print("opened")
    except OSError as exc:
        print("refused", exc.errno)
"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:3] == ["refused 24"] * 3, out.stdout + out.stderr
    assert not (tmp_path / "x").exists()
