"""``manage.py up``: its reconciler pass and stop report (quick), then ``up`` under faults on a real
instance (slow; testing.instance: its own directory, SQLite database, web port and private Redis): the
Celery worker's main process or the Redis SIGKILLed mid-run, ``up`` itself stopped with Ctrl-C mid-run
and started again. Every run must end FINISHED with exactly one episode per seed (none lost, none
duplicated).

The starter program of robosuite:Lift on four seeds; one worker process, so that a 2-core machine is not
shared by two simulators. A fresh worker process spends most of a minute on its first episode (building
the simulator), hence the generous timeouts."""

import io
import signal
import time

import pytest
from django.db import OperationalError

from runs.management.commands import up
from testing.instance import Instance
from testing.waiting import wait_for

SEEDS = [1, 2, 3, 4]


# -- quick: the pieces of up ---------------------------------------------------------------------------
def command():
    out = io.StringIO()
    return up.Command(stdout=out, stderr=out), out


def test_the_reconciler_pass_says_what_it_did_and_failures_in_one_line_once(monkeypatch):
    results = iter(
        [
            OperationalError("unable to open database file\nmore detail"),
            OperationalError("unable to open database file\nmore detail"),
            ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused."),
            {},
            {"skipped": 1},
            {"episodes_reset": 1, "episodes_sent": 2, "relayed": 0},
        ]
    )

    def fake():
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr("runs.reconcile.reconcile", fake)
    cmd, out = command()
    for _ in range(6):
        cmd.reconcile_pass()  # never raises
    lines = [line.split(" up: ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "reconcile failed: OperationalError: unable to open database file",
        "reconcile failed: ConnectionError: Error 111 connecting to 127.0.0.1:6390. Connection refused.",
        "reconcile works again",
        "reconciled: episodes_reset 1, episodes_sent 2",
    ]
    assert "Traceback" not in out.getvalue()


def test_the_stop_report_counts_unfinished_runs_and_their_episodes(transactional_db):
    from runs.tests.factories import RunFactory

    assert up.work_left() == (0, 0)
    run = RunFactory(seeds=(1, 2, 3), n_candidates=2)
    assert up.work_left() == (1, 6)  # 2 candidates x 3 seeds, none with a result
    run.status = run.Status.FINISHED
    run.save(update_fields=["status"])
    assert up.work_left() == (0, 0)


def test_the_worker_runs_without_gossip_and_mingle():
    cmd = up.worker_command(3, ["aspire", "episodes"])
    assert cmd[cmd.index("-c") + 1] == "3" and cmd[cmd.index("-Q") + 1] == "aspire,episodes"
    assert "--without-gossip" in cmd and "--without-mingle" in cmd


# -- slow: a real instance under faults ---------------------------------------------------------------


@pytest.fixture
def instance(tmp_path):
    with Instance(tmp_path / "var", workers=1, grace=60) as inst:
        yield inst


def assert_exactly_one_episode_per_seed(inst, run_id, seeds=SEEDS):
    run = inst.get_run(run_id)
    episodes = inst.episodes(run_id)
    assert run["status"] == "FINISHED", (run, inst.log()[-4000:])
    assert sorted(e["seed"] for e in episodes) == sorted(seeds), episodes
    assert len({(e["candidate"], e["seed"]) for e in episodes}) == len(episodes)
    assert all(e["status"] not in ("RUNNING", "CANCELLED") for e in episodes), episodes
    assert run["n_episodes"] == len(seeds)


@pytest.mark.slow
def test_a_killed_worker_is_restarted_alone_while_the_web_answers_and_the_run_finishes_exactly(instance):
    instance.start()
    web = instance.pids()["web"]
    run = instance.launch_run(seeds=SEEDS)
    instance.wait_started(run["id"], timeout=300)  # mid-episode: that one is reset and run again

    mark = len(instance.log())
    old = instance.kill("worker")
    instance.wait_log("worker exited with code -9; restarting in 1 s (restart 1)", timeout=30, after=mark)
    assert instance.request("GET", f"/api/runs/{run['id']}/")[0] == 200  # the web did not stop with it
    new = instance.wait_restarted("worker", old, timeout=30)
    assert new != old and instance.pids()["web"] == web

    instance.wait_run(run["id"], timeout=420)
    assert_exactly_one_episode_per_seed(instance, run["id"])
    assert instance.pids()["web"] == web


@pytest.mark.slow
def test_a_killed_private_redis_comes_back_on_the_same_url_and_the_run_finishes_exactly(instance):
    instance.start()
    url, worker, web = instance.state()["redis_url"], instance.pids()["worker"], instance.pids()["web"]
    run = instance.launch_run(seeds=SEEDS)
    instance.wait_started(run["id"], timeout=300)  # the worker holds an unacknowledged message

    mark = len(instance.log())
    old = instance.kill("redis")
    instance.wait_log("redis exited with code -9; restarting in 1 s (restart 1)", timeout=30, after=mark)
    instance.wait_restarted("redis", old, timeout=30)
    assert instance.state()["redis_url"] == url
    assert instance.request("GET", "/api/runs/")[0] == 200

    instance.wait_run(run["id"], timeout=420)
    assert_exactly_one_episode_per_seed(instance, run["id"])
    # The worker rode the outage out (reconnected) instead of dying of it; so did the web server.
    log = instance.log()
    assert "Unrecoverable error" not in log, log[-4000:]
    # Expected broker errors are one line each: no traceback, no per-outage deprecation notice.
    assert "Traceback" not in log and "CPendingDeprecationWarning" not in log, log[-4000:]
    assert instance.pids()["worker"] == worker and instance.pids()["web"] == web


@pytest.mark.slow
def test_ctrl_c_stops_within_the_grace_and_the_next_start_finishes_the_run_exactly(tmp_path):
    grace = 5
    with Instance(tmp_path / "var", workers=1, grace=grace) as inst:
        inst.start()
        run = inst.launch_run(seeds=SEEDS)
        inst.wait_episodes(run["id"], 1, timeout=300)
        children = {k: v for k, v in inst.pids().items() if k != "up"}

        code, took = inst.stop(signal.SIGINT)
        assert code == 0
        assert took < grace + 10, took
        log = inst.log()
        assert "up: stopping: the worker finishes its running episodes" in log
        assert "left to be resumed at the next start" in log or "stopped; no unfinished work" in log
        time.sleep(0.5)
        for name, pid in children.items():
            assert not _alive(pid), f"{name} ({pid}) outlived up"

        inst.start()  # same directory: database and Redis data
        inst.wait_run(run["id"], timeout=420)
        assert_exactly_one_episode_per_seed(inst, run["id"])


@pytest.mark.slow
def test_a_killed_up_takes_its_children_with_it_and_the_next_start_finishes_the_run_exactly(tmp_path):
    with Instance(tmp_path / "var", workers=1) as inst:
        inst.start()
        run = inst.launch_run(seeds=SEEDS)
        inst.wait_episodes(run["id"], 1, timeout=300)
        children = {k: v for k, v in inst.pids().items() if k != "up"}

        inst.kill("up")  # SIGKILL: no clean-up of its own
        inst.proc.wait(10)
        # The parent-death signal (SIGTERM): Redis and the web server stop at once, the worker finishes
        # the episode it was running (warm shutdown), then stops too.
        wait_for(lambda: not _alive(children["redis"]) and not _alive(children["web"]), timeout=30)

        inst.start()  # at once, the old worker possibly still finishing its episode
        inst.wait_run(run["id"], timeout=420)
        assert_exactly_one_episode_per_seed(inst, run["id"])
        wait_for(lambda: not _alive(children["worker"]), timeout=120)


def _alive(pid) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False
