"""In a real browser: an actor page kept open follows the actor (evaluating, then finished) without a
reload, keeps an opened section open, and stops listening once the actor is terminal."""

import os

import pytest

from accounts.tests.factories import UserFactory
from runs import live
from runs.models import Actor, Run
from testing.browser import open_live_page

from .factories import AgentCallFactory, ExperimentFactory

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", (800, 1280))
def test_an_open_actor_page_follows_its_actor_without_a_reload(asgi_live_server, browser, transactional_db, width):
    owner = UserFactory(username="ada")
    owner.set_password("a-long-test-password")
    owner.save()
    run = ExperimentFactory(owner=owner)
    actor = run.actors.get()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    Actor.objects.filter(pk=actor.pk).update(status=Actor.Status.PROPOSING)
    AgentCallFactory(run=run, actor=actor, round=0)

    context, page = open_live_page(
        browser, asgi_live_server.url, f"/actors/{actor.pk}/", "ada", "a-long-test-password", width
    )
    assert page.locator('meta[http-equiv="refresh"]').count() == 0  # only inside <noscript>

    Actor.objects.filter(pk=actor.pk).update(status=Actor.Status.EVALUATING)
    live.run_changed(run.pk, "actor", actor=actor.pk)
    live.broadcaster.flush()
    page.wait_for_function("document.getElementById('actor-status').textContent.includes('Evaluating')")

    Actor.objects.filter(pk=actor.pk).update(status=Actor.Status.FINISHED)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
    live.run_changed(run.pk, "status", status=Run.Status.FINISHED)
    live.broadcaster.flush()
    page.wait_for_function("document.getElementById('actor-status').textContent.includes('Finished')")
    page.wait_for_function("document.getElementById('live-state').textContent === 'ended'")
    assert page.evaluate("window.notReloaded === true")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    folder = os.environ.get("ASPIRE_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"actor_live_{width}.png"), full_page=True)
    context.close()
