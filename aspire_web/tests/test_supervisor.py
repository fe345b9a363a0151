"""aspire_web.supervisor with small real child processes: restart alone with backoff and a log line,
backoff reset, spawn failures, stop order, grace and SIGKILL, a second signal, orphans."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from aspire_web import localredis
from aspire_web.supervisor import Program, Supervisor, backoff, child_options
from testing.waiting import wait_for

SLEEPER = "import time\nwhile True: time.sleep(1)\n"


def sleeper(**extra):
    return lambda: subprocess.Popen([sys.executable, "-c", SLEEPER], **child_options(), **extra)


def stopping_child(name: str, record, linger: float = 0.0, ignore_term: bool = False):
    """A child that, on SIGTERM, waits ``linger`` seconds, appends its name to ``record`` and exits 0;
    with ``ignore_term`` it ignores SIGTERM."""
    code = f"""
import signal, sys, time
def term(*a):
    time.sleep({linger})
    with open({str(record)!r}, "a") as f:
        f.write({name!r} + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if {ignore_term} else term)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

    def spawn():
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **child_options())
        assert proc.stdout.readline().strip() == "ready"  # its handler is in place
        return proc

    return spawn


@pytest.fixture
def lines():
    return []


def running(sup, stop):
    thread = threading.Thread(target=sup.run, args=(stop,), kwargs={"interval": 0.02}, daemon=True)
    thread.start()
    return thread


def test_backoff_doubles_from_one_second_up_to_the_cap():
    assert [backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff(3, first=0.1, cap=0.3) == pytest.approx(0.3)


def test_a_dead_child_is_restarted_alone_with_backoff_and_a_log_line(lines):
    sup = Supervisor(
        [Program("worker", sleeper()), Program("web", sleeper())], log=lines.append, first_delay=0.3, max_delay=0.6
    )
    stop = threading.Event()
    try:
        sup.start()
        web_pid = sup.pids()["web"]
        thread = running(sup, stop)
        for n, delay in [(1, "0.3"), (2, "0.6"), (3, "0.6")]:
            old = sup.pids()["worker"]
            killed_at = time.monotonic()
            os.kill(old, signal.SIGKILL)
            new = wait_for(lambda: (p := sup.pids()["worker"]) not in (None, old) and p, timeout=10, interval=0.02)
            took = time.monotonic() - killed_at
            assert float(delay) <= took < float(delay) + 1.5
            assert f"worker exited with code -9; restarting in {delay} s (restart {n})" in lines
            os.kill(new, 0)
        assert sup.pids()["web"] == web_pid  # the other child never stopped
        assert not any(line.startswith("web") for line in lines)
    finally:
        stop.set()
        thread.join(5)
        sup.stop()


def test_the_backoff_starts_again_after_a_child_stayed_up(lines):
    sup = Supervisor([Program("redis", sleeper())], log=lines.append, first_delay=0.1, max_delay=5, stable_after=0.8)
    stop = threading.Event()
    try:
        sup.start()
        thread = running(sup, stop)
        for _ in range(2):  # two quick deaths: 0.1 s, then 0.2 s
            old = sup.pids()["redis"]
            os.kill(old, signal.SIGKILL)
            wait_for(lambda: sup.pids()["redis"] not in (None, old), timeout=10, interval=0.02)
        time.sleep(1.0)  # stays up longer than stable_after
        os.kill(sup.pids()["redis"], signal.SIGTERM)
        wait_for(lambda: sum("exited" in line for line in lines) == 3, timeout=10, interval=0.02)
        deaths = [line for line in lines if "exited" in line]
        assert deaths == [
            "redis exited with code -9; restarting in 0.1 s (restart 1)",
            "redis exited with code -9; restarting in 0.2 s (restart 2)",
            "redis exited with code -15; restarting in 0.1 s (restart 3)",
        ]
    finally:
        stop.set()
        thread.join(5)
        sup.stop()


def test_a_child_that_cannot_start_is_retried(lines, tmp_path):
    attempts = []

    def flaky():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("port 1234 in use")
        return sleeper()()

    sup = Supervisor([Program("redis", flaky)], log=lines.append, first_delay=0.1, max_delay=1)
    stop = threading.Event()
    try:
        sup.start()
        thread = running(sup, stop)
        wait_for(lambda: sup.pids()["redis"], timeout=10, interval=0.02)
        assert len(attempts) == 3
        assert lines[:2] == [
            "redis could not start (RuntimeError: port 1234 in use); retrying in 0.1 s",
            "redis could not start (RuntimeError: port 1234 in use); retrying in 0.2 s",
        ]
    finally:
        stop.set()
        thread.join(5)
        sup.stop()


def test_stop_goes_in_order_and_waits_for_a_graceful_child(tmp_path):
    record = tmp_path / "stopped"
    sup = Supervisor(
        [
            Program("redis", stopping_child("redis", record)),
            Program("worker", stopping_child("worker", record, linger=1.0)),
            Program("web", stopping_child("web", record)),
        ],
        log=lambda line: None,
    )
    sup.start()
    began = time.monotonic()
    outcome = sup.stop(["worker", "web", "redis"], {"worker": 10})
    took = time.monotonic() - began
    assert record.read_text().split() == ["worker", "web", "redis"]
    assert outcome == {"worker": "exited 0", "web": "exited 0", "redis": "exited 0"}
    assert 1.0 <= took < 5  # the worker's second, not its 10 s of grace
    assert sup.pids() == {"redis": None, "worker": None, "web": None}


def test_a_child_that_outlives_its_grace_is_killed_with_its_process_group(tmp_path):
    record = tmp_path / "stopped"
    grandchild_pid = tmp_path / "grandchild"
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(grandchild_pid)!r}, 'w').write(str(p.pid))\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )

    def spawn():
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, **child_options())
        assert proc.stdout.readline().strip() == "ready"
        return proc

    sup = Supervisor(
        [Program("worker", spawn), Program("web", stopping_child("web", record))],
        log=lambda line: None,
    )
    sup.start()
    grandchild = int(grandchild_pid.read_text())
    began = time.monotonic()
    outcome = sup.stop(["worker", "web"], {"worker": 1.5})
    took = time.monotonic() - began
    assert outcome["worker"].startswith("killed after") and outcome["web"] == "exited 0"
    assert 1.5 <= took < 5
    assert record.read_text().split() == ["web"]  # after the worker
    wait_for(lambda: not _alive(grandchild), timeout=5, interval=0.05)  # the group went with it


def test_force_cuts_the_grace_short(tmp_path):
    sup = Supervisor([Program("worker", stopping_child("worker", tmp_path / "r", ignore_term=True))], log=print)
    sup.start()
    force = threading.Event()
    threading.Timer(0.5, force.set).start()
    began = time.monotonic()
    outcome = sup.stop(["worker", "web", "redis"], {"worker": 60}, force=force)  # no web, no redis here
    assert outcome["worker"].startswith("killed") and time.monotonic() - began < 5


def test_nothing_restarts_once_stopping(lines):
    sup = Supervisor([Program("web", sleeper())], log=lines.append, first_delay=0.05)
    sup.start()
    sup.stop()
    sup.check()
    time.sleep(0.2)
    sup.check()
    assert sup.pids() == {"web": None} and lines == []


def test_children_die_with_a_supervisor_that_was_killed(tmp_path):
    """A supervisor killed with SIGKILL leaves no children behind (the parent-death signal)."""
    pids = tmp_path / "pids"
    code = (
        "import sys, time\n"
        "sys.path.insert(0, %r)\n"
        "from aspire_web.supervisor import Program, Supervisor\n"
        "from aspire_web.tests.test_supervisor import sleeper\n"
        "sup = Supervisor([Program('a', sleeper()), Program('b', sleeper())], log=print)\n"
        "sup.start()\n"
        "open(%r, 'w').write(' '.join(str(p) for p in sup.pids().values()))\n"
        "time.sleep(600)\n"
    ) % (os.getcwd(), str(pids))
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        children = wait_for(lambda: pids.exists() and pids.read_text().split(), timeout=20)
        children = [int(p) for p in children]
        assert all(_alive(p) for p in children)
        parent.kill()
        parent.wait()
        wait_for(lambda: not any(_alive(p) for p in children), timeout=10, interval=0.05)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_private_redis_restarted_on_its_port_and_directory_keeps_its_url_and_data(tmp_path, lines):
    """What up does when its Redis dies: the same port (every URL handed out stays valid) and the same
    directory, whose append-only file (fsync every second) brings the data back."""
    import redis

    port = localredis.free_port()
    sup = Supervisor(
        [Program("redis", lambda: localredis.start(tmp_path, port, **child_options())[0])],
        log=lines.append,
        first_delay=0.1,
    )
    stop = threading.Event()
    try:
        sup.start()
        thread = running(sup, stop)
        client = redis.Redis.from_url(localredis.url_for(port))
        client.rpush("aspire", "message")
        time.sleep(1.5)  # past the once-a-second fsync
        old = sup.pids()["redis"]
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: sup.pids()["redis"] not in (None, old), timeout=15, interval=0.05)
        assert wait_for(lambda: _answers(client), timeout=10)
        assert client.lrange("aspire", 0, -1) == [b"message"]
        assert "redis exited with code -9; restarting in 0.1 s (restart 1)" in lines
    finally:
        stop.set()
        thread.join(5)
        sup.stop()


def _answers(client) -> bool:
    try:
        return client.ping()
    except Exception:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not reaped yet by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False
