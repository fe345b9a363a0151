"""The run page of an experiment keeps its actor rows current: every live message carries them, rendered
from the database, so a finished run's row never stays at "Evaluating"."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from accounts.tests.factories import UserFactory
from runs import live
from runs.models import Actor, Run
from runs.tests.test_live_consumers import connect, next_of

from .factories import ExperimentFactory


@pytest.fixture
def owner(transactional_db):
    return UserFactory(username="owner")


def test_actor_rows_are_re_rendered_on_every_run_level_event(owner):
    run = ExperimentFactory(owner=owner)
    actor = run.actors.get()

    async def scenario():
        comm = connect(f"/ws/runs/{run.pk}/", owner)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "resume"})
        snapshot = await next_of(comm, "fragments")
        rows = {f["id"]: f["html"] for f in snapshot["fragments"]}["actors"]
        assert f'id="actor-{actor.pk}"' in rows

        def evaluate_then_finish():
            Actor.objects.filter(pk=actor.pk).update(status=Actor.Status.EVALUATING)
            live.run_changed(run.pk, "actor", actor=actor.pk)

        await database_sync_to_async(evaluate_then_finish)()
        msg = await next_of(comm, "fragments")
        assert "Evaluating" in {f["id"]: f["html"] for f in msg["fragments"]}["actors"]

        def finish():
            # The actor's own event is lost (a Redis hiccup); the run's end still reconciles the row.
            Actor.objects.filter(pk=actor.pk).update(status=Actor.Status.FINISHED)
            Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
            live.run_changed(run.pk, "status", status=Run.Status.FINISHED)

        await database_sync_to_async(finish)()
        msg = await next_of(comm, "fragments")
        rows = {f["id"]: f["html"] for f in msg["fragments"]}["actors"]
        assert "Evaluating" not in rows and "Finished" in rows
        await comm.disconnect()

    async_to_sync(scenario)()
