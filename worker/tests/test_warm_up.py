"""Worker warm-up (worker.engine.warm_up): after it, this thread's first episode of the task builds
nothing: the simulator, IK solver, planner and segmenter are the cached ones."""

import threading

from worker import engine
from worker.engine import EngineSettings, run_episode, simulators, warm_up
from worker.events import MemorySink
from worker.sim.catalog import get_task


def _in_fresh_thread(fn):
    """Run ``fn`` on a new thread (a new per-thread simulator cache, as a fresh worker process has)."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # surfaced in the test's thread
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=600)
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_after_warm_up_the_first_episode_builds_no_simulator(monkeypatch, starter_program):
    built = []
    real = engine.make_adapter
    monkeypatch.setattr(engine, "make_adapter", lambda spec: built.append(spec.key) or real(spec))

    def fresh_worker():
        took = warm_up(["robosuite:Lift", "robosuite:NoSuchTask"])
        warmed = list(built)
        entry = simulators().get(get_task("robosuite:Lift"))
        sink = MemorySink()
        result = run_episode(get_task("robosuite:Lift"), starter_program, 102, sink, EngineSettings(keyframes=False))
        return took, warmed, entry, simulators().get(get_task("robosuite:Lift")), result

    took, warmed, before, after, result = _in_fresh_thread(fresh_worker)
    assert list(took) == ["robosuite:Lift"] and took["robosuite:Lift"] > 0  # the unknown task is skipped
    assert warmed == ["robosuite:Lift"]
    assert built == ["robosuite:Lift"], "the first real episode built its simulator again"
    assert after is before  # the same simulator, IK solver, planner cache and segmenter objects
    assert result.status == "OK" and result.success


def test_a_failing_warm_up_is_logged_and_the_worker_still_starts(monkeypatch, caplog):
    def broken(spec):
        raise RuntimeError("no GL context")

    monkeypatch.setattr(engine, "make_adapter", broken)
    took = _in_fresh_thread(lambda: warm_up(["robosuite:Lift"]))
    assert took == {}
    assert "warm-up of robosuite:Lift failed" in caplog.text or "no GL context" in caplog.text
