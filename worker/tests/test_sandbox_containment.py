"""Containment: assume the attacker already won Python; the OS boundary and the host must hold alone.

Programs here run with ``python_policy=False`` (real builtins, real numpy, ``import os`` works), a
switch only tests reach. Each test ends with the worker alive and the next episode normal.
"""

import os
import resource

import pytest

from worker.sandbox import containment, probes, protocol
from worker.sandbox.host import ApiError, SandboxLimits, Status, run_program

API = [{"name": "noop", "doc": ""}, {"name": "record", "doc": ""}, {"name": "transform_points", "doc": ""}]
SEEN = {}


def dispatch(name, args, kwargs, line, stack):
    SEEN[name] = {"args": args, "kwargs": kwargs, "line": line, "stack": stack}
    if name == "transform_points":
        return len(args[0]) if args and isinstance(args[0], list) else 0
    return None


def raw(source, **limits):
    return run_program(
        source, API, dispatch, SandboxLimits(**{"wall_seconds": 10, "memory_mb": 512, **limits}), python_policy=False
    )


def run(source, **limits):
    return run_program(source, API, dispatch, SandboxLimits(**{"wall_seconds": 10, "memory_mb": 512, **limits}))


def assert_next_episode_normal():
    out = run("noop()\nprint('next')")
    assert out.status == Status.OK and out.stdout == "next\n", out
    assert out.sandbox == containment.BWRAP_LABEL


@pytest.fixture(autouse=True)
def contained(monkeypatch):
    monkeypatch.delenv(containment.MODE_ENV, raising=False)
    containment.reset_cache()
    yield
    containment.reset_cache()


# -- the OS boundary ---------------------------------------------------------------------------------------------


def test_this_machine_contains_programs_with_bubblewrap_and_seccomp():
    box = containment.current()
    assert box.contained and box.mode == containment.BWRAP and box.label == "bwrap+seccomp"


def test_every_escape_probe_is_refused_under_the_os_boundary_alone(tmp_path):
    project = tmp_path / "project"
    (project / "var" / "media").mkdir(parents=True)
    db = project / "var" / "db.sqlite3"
    db.write_bytes(b"SQLite format 3\x00 tokens")
    key = project / "var" / "secret_key"
    key.write_text("django-secret")
    media = project / "var" / "media" / "frame.jpg"
    media.write_bytes(b"\xff\xd8jpeg")
    results = probes.run_probes(
        read_paths=[str(db), str(key), str(media)], write_dirs=[str(project), str(project / "var")]
    )
    failed = [(r.name, r.detail, r.stdout) for r in results if not r.passed]
    assert not failed
    assert len(results) == len(probes.PROBES) + 4
    assert db.read_bytes().startswith(b"SQLite") and sorted(p.name for p in project.iterdir()) == ["var"]
    assert_next_episode_normal()


def test_the_probes_notice_an_escape_when_there_is_no_boundary(tmp_path, monkeypatch):
    # The same read probe, run as a plain process, reads the canary: the probe can fail.
    canary = tmp_path / "canary.txt"
    canary.write_text("secret")
    monkeypatch.setenv(containment.MODE_ENV, containment.PROCESS)
    containment.reset_cache()
    out = raw(probes._READ.format(paths=[str(canary)]))
    assert out.sandbox == containment.PROCESS_LABEL
    verdict = probes._judge("read", out, None)
    assert not verdict.passed and "ESCAPED: read" in verdict.detail


def test_a_program_sees_an_empty_root_with_no_project_and_a_private_tmp():
    out = raw(
        "import os\nprint(sorted(os.listdir('/')))\nprint(os.listdir('/tmp'))\nprint(os.getuid(), os.getpid())\n"
        "print(sorted(os.environ))"
    )
    assert out.status == Status.OK, out
    root, tmp, ids, env = out.stdout.splitlines()
    assert "work" not in root and "home" not in root and "var" not in root and "bin" not in root
    assert tmp == "[]"
    uid, pid = ids.split()
    assert uid == "65534" and int(pid) < 10
    assert "REDIS_URL" not in env and "DJANGO_SETTINGS_MODULE" not in env


def test_scipy_is_bound_read_only_and_nothing_else_of_the_environment():
    # An attacker with real Python imports scipy (bound for scipy.spatial.transform) and tries to change it.
    out = raw(
        "import os, sys\nimport scipy.spatial.transform as t\nprint(sorted(os.listdir('/sandbox/lib')))\n"
        "print(t.Rotation.from_euler('z', 0.5).as_quat().round(3).tolist())\n"
        "pkg = os.path.dirname(t.__file__)\n"
        "for attempt in (lambda: open(os.path.join(pkg, 'planted.py'), 'w'), lambda: os.remove(t.__file__),\n"
        "                lambda: open(t.__file__, 'a')):\n"
        "    try:\n        attempt()\n        print('ESCAPED')\n"
        "    except OSError as exc:\n        print('blocked', exc.errno)\n"
    )
    assert out.status == Status.OK, out
    listing, quat, *attempts = out.stdout.splitlines()
    assert set(eval(listing)) <= {"numpy", "numpy.libs", "msgpack", "msgpack.libs", "scipy", "scipy.libs"}
    assert quat == "[0.0, 0.0, 0.247, 0.969]"
    assert len(attempts) == 3 and not any("ESCAPED" in a for a in attempts)
    assert_next_episode_normal()


def test_scipy_imported_by_a_program_runs_under_the_program_filter():
    out = run("from scipy.spatial.transform import Rotation, Slerp\nprint(Rotation.identity().as_quat().tolist())")
    assert out.status == Status.OK and out.stdout == "[0.0, 0.0, 0.0, 1.0]\n", out
    assert out.sandbox == containment.BWRAP_LABEL


def test_memory_is_capped_from_outside_the_child():
    out = raw(
        "import resource\nprint(resource.getrlimit(resource.RLIMIT_AS))\n"
        "resource.setrlimit(resource.RLIMIT_AS, (-1, -1))\nprint('lifted')"
    )
    assert "lifted" not in out.stdout
    assert out.stdout.startswith(f"({512 * 1024 * 1024}, {512 * 1024 * 1024})")
    assert_next_episode_normal()


def test_an_infinite_loop_in_real_python_is_stopped_at_the_wall_limit():
    out = raw("import time\nwhile True:\n    time.sleep(0.01)", wall_seconds=1.5)
    assert out.status == Status.TIMEOUT
    assert_next_episode_normal()


# -- the host never trusts the child ----------------------------------------------------------------------------

FRAME = """
import msgpack, os, struct, sys
W = int(sys.argv[2])
def send(obj, raw=None):
    body = raw if raw is not None else msgpack.packb(obj, use_bin_type=True)
    os.write(W, struct.pack(">I", len(body)) + body)
"""


@pytest.mark.parametrize(
    "body, needle",
    [
        ("send({'op': 'done', 'status': 'OK', 'error': '', 'line': 'seven', 'stdout': ''})", "line"),
        ("send({'op': 'done', 'status': 'INTERNAL_ERROR', 'error': '', 'line': 0, 'stdout': ''})", "status"),
        ("send({'op': 'done', 'status': 'OK', 'error': '', 'line': 0, 'stdout': '', 'success': True})", ""),
        ("send({'op': 'call', 'name': 'noop', 'args': [], 'kwargs': {}, 'line': 1.5, 'stack': []})", "line"),
        ("send({'op': 'call', 'name': 7, 'args': [], 'kwargs': {}, 'line': 1, 'stack': []})", "name"),
        ("send({'op': 'shell'})", "op"),
        ("send(None, raw=b'\\xc1\\xc1\\xc1')", ""),
        ("os.write(W, struct.pack('>I', 2**31))", "exceeds"),
        ("send(['not', 'a', 'dict'])", ""),
    ],
)
def test_a_malformed_frame_ends_the_episode_with_a_protocol_error(body, needle):
    out = raw(FRAME + body + "\nimport time\ntime.sleep(5)")
    assert out.status == Status.SANDBOX_PROTOCOL_ERROR, out
    assert needle in out.error
    assert_next_episode_normal()


def test_a_forged_done_cannot_hide_a_violation_the_host_saw():
    out = raw(
        FRAME + "send({'op': 'call', 'name': 'open', 'args': ['/etc/passwd'], 'kwargs': {}, 'line': 3, "
        "'stack': []})\nos.read(int(sys.argv[1]), 1 << 16)\n"
        "send({'op': 'done', 'status': 'OK', 'error': '', 'line': 0, 'stdout': 'all good'})\n"
        "import time\ntime.sleep(5)"
    )
    assert out.status == Status.POLICY_VIOLATION and "'open' is not a robot API function" in out.error


def test_stdout_and_error_text_are_capped_by_the_host():
    out = raw(
        FRAME + "send({'op': 'done', 'status': 'EXCEPTION', 'error': 'E' * 500_000, 'line': 1, "
        "'stdout': '<script>' * 100_000})\nimport time\ntime.sleep(5)"
    )
    assert out.status == Status.EXCEPTION
    assert len(out.stdout) <= protocol.MAX_STDOUT_CHARS + 100
    assert len(out.error) <= protocol.MAX_ERROR_CHARS + 100
    # 4.8 MB in one string is past what any frame may carry.
    out = raw(
        FRAME + "send({'op': 'done', 'status': 'OK', 'error': '', 'line': 1, "
        "'stdout': '<script>' * 600_000})\nimport time\ntime.sleep(5)"
    )
    assert out.status == Status.SANDBOX_PROTOCOL_ERROR and out.stdout == ""
    assert_next_episode_normal()


def test_a_program_printing_megabytes_keeps_only_the_tail():
    out = run("for i in range(200_000):\n    print('line', i)")
    assert out.status == Status.OK
    assert len(out.stdout) <= protocol.MAX_STDOUT_CHARS + 100 and out.stdout.endswith("line 199999\n")


def test_the_memory_amplification_call_costs_the_host_nothing():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = run("transform_points([[]] * 66_000_000, [1, 0, 0, 0])", memory_mb=1024, wall_seconds=30)
    assert out.status in (Status.SANDBOX_PROTOCOL_ERROR, Status.EXCEPTION, Status.MEMORY_LIMIT), out
    # The forged frame, straight on the pipe: 7 million empty lists in a frame under the size cap.
    out = raw(
        FRAME
        + """
p = msgpack.packb
n = 7_000_000
body = (b"\\x86" + p("op") + p("call") + p("name") + p("transform_points") + p("kwargs") + p({}) + p("line") + p(1)
        + p("stack") + p([]) + p("args") + b"\\x91\\xdd" + struct.pack(">I", n) + b"\\x90" * n)
send(None, raw=body)
import time
time.sleep(5)
""",
        memory_mb=1024,
        wall_seconds=30,
    )
    assert out.status == Status.SANDBOX_PROTOCOL_ERROR
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200, f"the host's peak memory grew by {grown_mib:.0f} MiB"
    assert_next_episode_normal()


def test_a_deep_recursion_through_a_long_name_stores_a_capped_stack():
    name = "f" * 5000
    out = run(f"def {name}(n):\n    if n == 0:\n        return noop()\n    return {name}(n - 1)\n\n{name}(500)")
    assert out.status == Status.OK, out
    stack = SEEN["noop"]["stack"]
    assert len(stack) == protocol.MAX_STACK_FRAMES
    assert all(len(fn) <= protocol.MAX_FRAME_NAME_CHARS + 20 for fn, _ in stack)
    assert stack[0][0] == "<module>" and stack[-1][1] == 3
    assert_next_episode_normal()


def test_the_call_budget_ends_the_episode_with_a_trace_limit():
    out = run("while True:\n    noop()", max_calls=50)
    assert out.status == Status.TRACE_LIMIT and "50" in out.error
    assert_next_episode_normal()


def test_a_terminal_api_error_ends_the_episode_with_its_status():
    def stop(name, args, kwargs, line, stack):
        raise ApiError("trace budget spent", status=Status.TRACE_LIMIT, terminal=True)

    out = run_program("try:\n    noop()\nexcept BaseException:\n    pass\nprint('went on')", API, stop)
    assert out.status == Status.TRACE_LIMIT and out.stdout == ""


# -- refusing to run uncontained ----------------------------------------------------------------------------------


def test_without_bubblewrap_the_worker_refuses_and_says_why(monkeypatch):
    real_which = containment.shutil.which
    monkeypatch.setattr(containment.shutil, "which", lambda cmd: None if cmd == "bwrap" else real_which(cmd))
    containment.reset_cache()
    out = run("print('hi')")
    assert out.status == Status.SANDBOX_UNAVAILABLE
    assert "bubblewrap is not installed" in out.error and "ASPIRE_SANDBOX=process" in out.error
    assert out.sandbox == ""


def test_process_mode_must_be_chosen_and_is_labelled_not_contained(monkeypatch):
    monkeypatch.setenv(containment.MODE_ENV, "process")
    containment.reset_cache()
    out = run("import numpy as np\nprint(np.arange(3).sum())")
    assert out.status == Status.OK and out.stdout == "3\n"
    assert out.sandbox == containment.PROCESS_LABEL
    monkeypatch.setenv(containment.MODE_ENV, "nonsense")
    containment.reset_cache()
    out = run("print(1)")
    assert out.status == Status.SANDBOX_UNAVAILABLE and "not a sandbox mode" in out.error


def test_a_delegated_cgroup_gets_per_episode_memory_and_pids_limits(tmp_path):
    root = tmp_path / "cg"
    root.mkdir()
    for name, text in (("cgroup.procs", ""), ("cgroup.subtree_control", "memory pids")):
        (root / name).write_text(text)
    limits = containment.CgroupLimits(str(root), memory_mb=256)
    path = limits.create()
    assert open(os.path.join(path, "memory.max")).read() == str(256 * 1024 * 1024)
    assert open(os.path.join(path, "pids.max")).read() == "8"
    assert limits.launcher()[-1] == os.path.join(path, "cgroup.procs")
    for name in ("memory.max", "pids.max"):  # a real cgroup's files vanish with it; these are plain files
        os.unlink(os.path.join(path, name))
    limits.remove()
    assert not os.path.exists(path)


# -- the trace a program can make the host store ------------------------------------------------------------------


def _tracer(**kw):
    from worker.robot.tracer import CallContext, Tracer

    records = []
    tracer = Tracer(
        enabled=True, media=None, emit=records.append, capture_frame=lambda: (None, ""), sim_time=lambda: 0.0, **kw
    )
    return tracer, records, CallContext


def test_one_call_cannot_store_more_than_its_field_cap():
    from worker.robot import tracer as tr

    tracer, records, ctx = _tracer()
    nested = {f"k{i}": {f"j{j}": {f"m{m}": "x" * 300 for m in range(24)} for j in range(24)} for i in range(24)}
    tracer.invoke("noop", lambda c, **kw: nested, {"arg": nested}, 1, [], False, ctx(True))
    record = records[0]
    assert "truncated" in record.args and "truncated" in record.result
    assert tracer.bytes < 4 * tr.MAX_FIELD_BYTES


def test_the_trace_byte_budget_is_reported_once_spent():
    tracer, records, ctx = _tracer(max_bytes=20_000)
    while not tracer.over_budget():
        tracer.invoke("noop", lambda c, **kw: "y" * 250, {"text": "x" * 250}, 1, [], False, ctx(True))
    assert 20_000 < tracer.bytes < 22_000 and 15 < len(records) < 40


def test_the_survivor_check_counts_orphans_but_not_other_process_trees(tmp_path):
    # A process named like a sandbox child that forked away (re-parented to init) is a survivor; one whose
    # parent is a live process of another tree (a worker pool running its own episode) is not.
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    fake = tmp_path / "sandbox" / "child.py"
    fake.parent.mkdir()
    fake.write_text("import time\ntime.sleep(60)\n")
    before = probes._sandbox_pids()
    # the orphan: its shell exits at once, so it is re-parented
    orphan = int(
        subprocess.run(
            ["sh", "-c", f"{sys.executable} {fake} >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
        ).stdout
    )
    # the foreign tree: a shell that forked away (itself an orphan now) and waits on its own child
    foreign_shell = int(
        subprocess.run(
            ["sh", "-c", f"sh -c '{sys.executable} {fake}; sleep 60' >/dev/null 2>&1 & echo $!"],
            capture_output=True,
            text=True,
        ).stdout
    )
    try:
        time.sleep(1.0)
        found = probes._sandbox_pids() - before
        assert orphan in found
        foreign = [
            p
            for p in (int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit())
            if foreign_shell in probes._parents(p)
        ]
        assert foreign and not set(foreign) & found
    finally:
        for pid in (orphan, foreign_shell):
            try:
                os.killpg(os.getpgid(pid), 0)
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in probes._sandbox_pids() - before:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["pkill", "-9", "-f", str(fake)])
