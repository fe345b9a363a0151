"""The run page of an experiment whose actor waits for its MCP client: waiting, not stalled."""

from experiments.tests.factories import ExperimentFactory
from runs import presenters
from runs.tests.test_run_health import age, fresh_pool_cache  # noqa: F401 (an autouse fixture)


def test_a_run_whose_actor_awaits_its_mcp_client_is_waiting_not_stalled(user, owner_client):
    run = age(ExperimentFactory(owner=user, agent={"backend": "mcp"}), 600)
    assert presenters.run_health(run)["stalled"]  # its actor is still queued: nothing moves
    actor = run.actors.get()
    run.actors.update(status="AWAITING")
    health = presenters.run_health(run)
    assert not health["stalled"] and health["awaiting_client"] == [actor.pk]
    page = owner_client.get(run.get_absolute_url()).content.decode()
    assert 'id="awaiting-client"' in page and "Waiting for the MCP client of actor" in page
    assert 'id="stall-notice"' not in page
