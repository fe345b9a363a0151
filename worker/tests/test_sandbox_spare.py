"""A worker that keeps a spare sandbox process (host.keep_spare, turned on by engine.warm_up) still runs
every program in its own fresh child: the spare only starts earlier."""

import os
import signal
import time

import pytest

from worker.sandbox import host
from worker.sandbox.host import SandboxLimits, Status, run_program

from .test_sandbox_host import API, dispatch, sandbox_children

FIRST = "secret_of_the_first = 42\nprint('first')"
SECOND = """
try:
    secret_of_the_first
    print('state leaked')
except NameError:
    print('fresh')
obs = get_observation()
print(obs['line'])
"""


def _gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid not in sandbox_children():
            return True
        time.sleep(0.05)
    return False


def _children(count, timeout=10.0):
    """The sandbox children once there are ``count`` of them (a spare's interpreter starts a moment after
    run_program returns)."""
    deadline = time.monotonic() + timeout
    found = sandbox_children()
    while len(found) != count and time.monotonic() < deadline:
        time.sleep(0.05)
        found = sandbox_children()
    return found


@pytest.fixture
def spare():
    host.keep_spare(True)
    yield
    host.keep_spare(False)


def test_without_it_no_child_outlives_its_program():
    out = run_program(FIRST, API, dispatch)
    assert out.status == Status.OK
    assert sandbox_children() == []


def test_the_spare_runs_the_next_program_once_and_fresh(spare):
    first = run_program(FIRST, API, dispatch)
    assert first.status == Status.OK and first.stdout.strip() == "first"
    waiting = _children(1)
    assert len(waiting) == 1, "one spare child waits for the next program"
    second = run_program(SECOND, API, dispatch)
    assert second.status == Status.OK, second.error
    assert second.stdout.split() == ["fresh", "7"]  # nothing of the first program; its call was served
    assert _gone(waiting[0]), "the spare ran one program and ended"
    now = _children(1)
    assert len(now) == 1 and now != waiting, "a new spare waits"


def test_a_spare_that_died_is_replaced(spare):
    run_program(FIRST, API, dispatch)
    (pid,) = _children(1)
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    out = run_program(SECOND, API, dispatch)
    assert out.status == Status.OK and out.stdout.split()[0] == "fresh"


def test_a_spare_started_under_other_limits_is_not_used(spare):
    run_program(FIRST, API, dispatch)
    (old,) = _children(1)
    out = run_program(SECOND, API, dispatch, SandboxLimits(memory_mb=768))
    assert out.status == Status.OK
    assert _gone(old), "the spare of other limits was killed"
    assert host._SPARES.spare.key[3] == 768


def test_a_spare_inherited_from_another_process_is_left_to_it(spare):
    run_program(FIRST, API, dispatch)
    _children(1)
    inherited = host._SPARES.spare
    inherited.owner_pid = -1  # as after a fork: this process did not start it
    out = run_program(SECOND, API, dispatch)
    assert out.status == Status.OK and out.stdout.split()[0] == "fresh"
    assert host._SPARES.spare is not inherited
    # Only this process's ends of its pipes were closed: the child saw its input end (here no other process
    # holds it) and left by itself (exit code 3), it was not killed.
    assert inherited.session.proc.wait(timeout=10) == 3
    assert inherited.session.stderr_file.closed
    if inherited.session.workdir != "/":  # process mode: the directory is the starting process's to remove
        os.rmdir(inherited.session.workdir)


def test_turning_it_off_kills_the_spare(spare):
    run_program(FIRST, API, dispatch)
    (pid,) = _children(1)
    host.keep_spare(False)
    assert _gone(pid)
    run_program(FIRST, API, dispatch)
    assert sandbox_children() == []


def test_a_policy_refusal_does_not_spend_the_spare(spare):
    run_program(FIRST, API, dispatch)
    (pid,) = _children(1)
    out = run_program("import os\nos.system('true')", API, dispatch)
    assert out.status == Status.POLICY_VIOLATION
    assert sandbox_children() == [pid]
