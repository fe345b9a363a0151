"""Fixtures of the experiments app's tests (the shared ones are in the root conftest.py)."""

import pytest

from worker.events import EpisodeResult, EpisodeStart


@pytest.fixture
def instant_episodes(monkeypatch):
    """The engine replaced by an instant result (success unless the seed is in ``.failing``; ``.runs``
    lists the seeds run); the claim, sink and settling around it are the real ones (runs.work)."""
    from runs import work

    class Engine:
        def __init__(self):
            self.failing: set = set()
            self.runs: list = []

        def __call__(self, spec, program, seeds, sink, settings=None, media=None, should_stop=None):
            results = []
            for seed in seeds:
                if should_stop is not None and should_stop():
                    break
                handle = sink.episode_started(EpisodeStart(spec.key, seed, "hash"))
                result = EpisodeResult(seed=seed, success=seed not in self.failing, status="OK")
                sink.episode_finished(handle, result)
                self.runs.append(seed)
                results.append(result)
            return results

    engine = Engine()
    monkeypatch.setattr(work, "run_episodes", engine)
    return engine
