"""In a real browser: a run page kept open while the run finishes seeds, is cancelled, or ends shows the
database's state without a reload (no seed left "running", the final badge), and a shared page's brand
reads light on the dark bar."""

import os

import pytest

from runs import live, services
from runs.models import Run
from sharing import services as sharing
from testing.browser import open_live_page

from .factories import EpisodeResultFactory, RunFactory, StartedEpisodeFactory

pytestmark = pytest.mark.browser


def shot(page, name):
    folder = os.environ.get("ASPIRE_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"webfix_{name}.png"), full_page=True)


def row_text(page, episode_id):
    return page.inner_text(f"#episode-row-{episode_id} .episode-result")


@pytest.mark.parametrize("width", (800, 1280))
def test_an_open_run_page_follows_finish_and_cancel_without_a_reload(
    asgi_live_server, browser, django_user_model, width
):
    services.sync_catalog()
    user = django_user_model.objects.create_user("ada", password="a-long-test-password")
    run = RunFactory(owner=user, seeds=[101, 102])
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    sink, first = StartedEpisodeFactory(run=run, seed=101)
    _, second = StartedEpisodeFactory(run=run, seed=102)
    live.broadcaster.flush()

    context, page = open_live_page(
        browser, asgi_live_server.url, f"/runs/{run.pk}/", "ada", "a-long-test-password", width
    )
    assert "running" in row_text(page, first) and "running" in row_text(page, second)

    sink.episode_finished(first, EpisodeResultFactory(n_calls=0, success=True))
    live.broadcaster.flush()
    page.wait_for_function(
        f"document.querySelector('#episode-row-{first} .episode-result').textContent.includes('success')"
    )

    services.cancel_run(run, by=user)
    live.broadcaster.flush()
    page.wait_for_function("document.getElementById('run-status').dataset.status === 'CANCELLED'")
    assert page.evaluate("window.notReloaded === true")
    assert row_text(page, first).strip() == "success" and row_text(page, second).strip() == "no result"
    assert page.locator(".running-dot").count() == 0 and page.locator("#cancel-form").count() == 0
    assert page.inner_text("#live-state") == "ended"
    shot(page, f"run_cancelled_{width}")

    # A run that ends with every seed failed: the live page turns to the red "finished · 0%" badge.
    other = RunFactory(owner=user, seeds=[101])
    Run.objects.filter(pk=other.pk).update(status=Run.Status.RUNNING)
    sink, ep = StartedEpisodeFactory(run=other, seed=101)
    live.broadcaster.flush()
    page.goto(f"{asgi_live_server.url}/runs/{other.pk}/")
    page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
    sink.episode_finished(ep, EpisodeResultFactory(n_calls=0, success=False))
    Run.objects.filter(pk=other.pk).update(status=Run.Status.FINISHED)
    live.run_changed(other.pk, "status", status=Run.Status.FINISHED)
    live.broadcaster.flush()
    page.wait_for_function("document.getElementById('run-status').dataset.status === 'FINISHED'")
    assert page.inner_text("#run-status") == "finished · 0%"
    assert page.inner_text("#live-state") == "ended"

    # The shared view's brand is light on the dark top bar.
    _, token = sharing.create_link(user, "run", run.pk)
    guest = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    guest.goto(f"{asgi_live_server.url}/s/{token}/")
    color = guest.evaluate("getComputedStyle(document.querySelector('.topbar .brand')).color")
    assert color == "rgb(230, 241, 241)", color
    assert guest.evaluate("document.documentElement.scrollWidth <= innerWidth + 1")
    shot(guest, f"shared_run_{width}")
    context.close()
