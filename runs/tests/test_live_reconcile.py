"""The run page's live state is reconciled from the database: on every run-level event (a status change,
a cancel, the end) the summary and every candidate's seed rows are re-rendered, and a page that
reconnects gets the current fragments even when its run_seq looks current."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from accounts.tests.factories import UserFactory
from runs import live, services
from runs.models import Run

from .factories import EpisodeResultFactory, RunFactory, StartedEpisodeFactory
from .test_live_consumers import connect, next_of


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="owner")


def test_a_cancel_re_renders_every_seed_row_from_the_database(owner):
    services.sync_catalog()
    run = RunFactory(owner=owner, seeds=[101, 102])
    candidate = run.candidates.get()

    async def scenario():
        comm = connect(f"/ws/runs/{run.pk}/", owner)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "resume"})
        await next_of(comm, "fragments")
        sink, done = await database_sync_to_async(StartedEpisodeFactory)(run=run, seed=101)
        await next_of(comm, "fragments")
        _, cut = await database_sync_to_async(StartedEpisodeFactory)(run=run, seed=102)
        await next_of(comm, "fragments")
        await database_sync_to_async(sink.episode_finished)(done, EpisodeResultFactory(n_calls=0))
        await next_of(comm, "fragments")
        await database_sync_to_async(services.cancel_run)(run, owner)
        msg = await next_of(comm, "fragments")
        html = {f["id"]: f["html"] for f in msg["fragments"]}
        assert "CANCELLED" in html["run-summary"]
        rows = html[f"candidate-{candidate.pk}"]
        assert "running-dot" not in rows and "no result" in rows and '<span class="ok">success</span>' in rows
        await comm.disconnect()

    async_to_sync(scenario)()


def test_a_reconnecting_page_gets_the_current_fragments_whatever_its_run_seq(owner):
    services.sync_catalog()
    run = RunFactory(owner=owner, seeds=[101])
    live.run_changed(run.pk, "status", status=run.status)
    live.broadcaster.flush()
    seq = Run.objects.get(pk=run.pk).event_seq

    async def scenario():
        comm = connect(f"/ws/runs/{run.pk}/", owner)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "resume", "run_seq": seq})
        assert await comm.receive_nothing(0.3)  # the first load shows this state already
        await comm.disconnect()
        comm = connect(f"/ws/runs/{run.pk}/", owner)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "resume", "run_seq": seq, "refresh": True})
        msg = await next_of(comm, "fragments")
        assert msg["run_seq"] == seq and {"run-summary", "leaderboard"} <= {f["id"] for f in msg["fragments"]}
        await comm.disconnect()

    async_to_sync(scenario)()
