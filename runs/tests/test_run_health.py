"""The run page says when an active run is not moving ("No progress for N s — worker offline?") and how the
worker pool stands ("2 workers live, 1 busy" / "no live worker"): server-rendered, in the run-health
JSON the page polls, in the live fragments, and in a real browser (screenshot: /work/notes/run_health.png)."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import UserFactory
from runs import presenters
from runs.models import Candidate, Episode, PrimitiveCall, Run, WorkerHeartbeat
from runs.routing import websocket_urlpatterns
from sharing import services as sharing

from .factories import CallRecordFactory, EpisodeResultFactory, RunFactory, StartedEpisodeFactory

SCREENSHOT = Path("/work/notes/run_health.png")


@pytest.fixture(autouse=True)
def fresh_pool_cache():
    presenters._pool_cache.clear()
    yield
    presenters._pool_cache.clear()


def age(run, seconds, status=Run.Status.RUNNING):
    """Make ``run`` active and last touched ``seconds`` ago (created and started then)."""
    then = timezone.now() - timedelta(seconds=seconds)
    Run.objects.filter(pk=run.pk).update(status=status, created_at=then, started_at=then)
    Candidate.objects.filter(run=run).update(created_at=then)  # made with the run
    run.refresh_from_db()
    return run


def worker(name, *, beat_s_ago=1, busy="", queues=("aspire",)):
    now = timezone.now()
    return WorkerHeartbeat.objects.create(
        name=name,
        host="lab",
        pid=4242,
        queues=list(queues),
        started_at=now - timedelta(minutes=5),
        beat_at=now - timedelta(seconds=beat_s_ago),
        busy_with=busy,
    )


def test_an_active_run_without_progress_is_called_stalled(user, owner_client):
    run = age(RunFactory(owner=user), 120)
    health = presenters.run_health(run)
    assert health["active"] and health["stalled"]
    assert 120 <= health["idle_s"] < 130 and health["stall_seconds"] == 60
    assert health["pool_text"] == "no live worker"
    page = owner_client.get(run.get_absolute_url()).content.decode()
    assert 'id="stall-notice"' in page and f"No progress for {health['idle_s']} s — worker offline?" in page
    assert "Worker pool: <span" in page and "no live worker" in page


def test_a_queued_run_counts_from_its_creation(user):
    run = age(RunFactory(owner=user), 90, status=Run.Status.QUEUED)
    Run.objects.filter(pk=run.pk).update(started_at=None)
    run.refresh_from_db()
    health = presenters.run_health(run)
    assert health["stalled"] and health["idle_s"] >= 90


def test_recent_episodes_and_calls_are_progress(user, owner_client):
    run = age(RunFactory(owner=user), 300)
    sink, ep = StartedEpisodeFactory(run=run)
    assert not presenters.run_health(run)["stalled"]  # the episode just started

    long_ago = timezone.now() - timedelta(seconds=400)
    Episode.objects.filter(pk=ep).update(started_at=long_ago)
    assert presenters.run_health(run)["stalled"]
    sink.call_recorded(ep, CallRecordFactory(seq=1))  # a primitive call of the running episode, now
    health = presenters.run_health(run)
    assert not health["stalled"] and health["idle_s"] < 10
    PrimitiveCall.objects.filter(episode_id=ep).update(started_at=long_ago)
    sink.episode_finished(ep, EpisodeResultFactory(n_calls=1))  # finishing is progress too
    assert not presenters.run_health(run)["stalled"]
    page = owner_client.get(run.get_absolute_url()).content.decode()
    assert 'id="run-health"' in page and "stall-notice" not in page and "last progress" in page


def test_the_stall_threshold_is_a_setting(user, settings):
    run = age(RunFactory(owner=user), 120)
    settings.ASPIRE = {**settings.ASPIRE, "STALL_SECONDS": 600}
    health = presenters.run_health(run)
    assert not health["stalled"] and health["stall_seconds"] == 600


def test_an_ended_run_shows_neither_notice_nor_pool(user, owner_client):
    run = age(RunFactory(owner=user), 500, status=Run.Status.FINISHED)
    assert presenters.run_health(run) == {"run": run.pk, "status": "FINISHED", "active": False, "stalled": False}
    page = owner_client.get(run.get_absolute_url()).content.decode()
    assert 'id="run-health"' in page and "stall-notice" not in page and "Worker pool" not in page


def test_the_pool_line_counts_live_and_busy_workers(user, owner_client):
    run = age(RunFactory(owner=user), 10)
    worker("aspire@lab:1", busy="episode 7")
    worker("aspire@lab:2")
    worker("aspire@lab:3", beat_s_ago=600)  # stopped beating ten minutes ago: not live
    worker("aspire@lab:4", queues=())  # a run_program process: listed, not a pool worker
    health = presenters.run_health(run)
    assert health["pool"]["live"] == 2 and health["pool"]["busy"] == 1
    assert health["pool_text"] == "2 workers live, 1 busy"
    assert isinstance(health["pool"]["queued_messages"], int)  # the test Redis answers
    page = owner_client.get(run.get_absolute_url()).content.decode()
    assert "2 workers live, 1 busy" in page and "aspire@lab:1 (pid 4242" in page and "busy with episode 7" in page
    assert presenters.pool_summary({"live": 1, "busy": 0}) == "1 worker live, idle"
    assert presenters.pool_summary(None) == "worker pool unknown"


def test_the_notice_names_a_worker_that_stopped_beating(user):
    run = age(RunFactory(owner=user), 200)
    Run.objects.filter(pk=run.pk).update(
        worker="aspire@far-away-host:99", heartbeat_at=timezone.now() - timedelta(seconds=200)
    )
    run.refresh_from_db()
    health = presenters.run_health(run)
    assert health["worker"] == "aspire@far-away-host:99" and health["worker_live"] is False
    text = render_to_string("runs/_run_health.html", {"health": health})
    assert "Its worker aspire@far-away-host:99 has stopped beating" in text


def test_the_health_json_answers_whoever_may_read_the_run(user, owner_client):
    run = age(RunFactory(owner=user), 120)
    worker("aspire@lab:1")
    url = f"/runs/{run.pk}/health.json"
    body = owner_client.get(url).json()
    assert body["stalled"] and body["pool_text"] == "1 worker live, idle" and body["run"] == run.pk
    assert "No progress for" in body["html"] and body["html"].lstrip().startswith('<section id="run-health"')

    stranger = Client()
    stranger.force_login(UserFactory(username="stranger"))
    assert stranger.get(url).status_code == 404
    assert Client().get(url).status_code == 404
    assert owner_client.get("/runs/99999999999999999999999/health.json").status_code == 404

    link, token = sharing.create_link(user, "run", run.pk)
    assert Client().get(url, {"share": token}).json()["stalled"]
    assert Client().get(f"/runs/{run.pk + 1}/health.json", {"share": token}).status_code == 404
    assert Client().get(url, {"share": "made:up"}).status_code == 404
    sharing.revoke(link, user)
    assert Client().get(url, {"share": token}).status_code == 404


def test_the_page_tells_its_script_where_to_poll(user, owner_client):
    run = age(RunFactory(owner=user), 5)
    config = owner_client.get(run.get_absolute_url()).context["page_config"]
    assert config["health_url"] == f"/runs/{run.pk}/health.json" and config["health_poll_s"] == 10
    _, token = sharing.create_link(user, "run", run.pk)
    shared = Client().get(f"/s/{token}/")
    assert shared.status_code == 200
    assert shared.context["page_config"]["health_url"] == f"/runs/{run.pk}/health.json?share={quote(token, safe='')}"
    assert "No progress for" not in shared.content.decode()


def test_the_live_fragments_carry_the_health_section(run_owner_socket):
    fragments = run_owner_socket
    health = next(f for f in fragments if f["id"] == "run-health")
    assert "No progress for" in health["html"] and "no live worker" in health["html"]


@pytest.fixture
def run_owner_socket(transactional_db):
    owner = UserFactory(username="watcher")
    run = age(RunFactory(owner=owner), 100)

    async def snapshot():
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/runs/{run.pk}/")
        comm.scope["user"] = owner
        assert (await comm.connect(5))[0]
        await comm.send_json_to({"type": "resume"})
        message = await comm.receive_json_from(5)
        await comm.disconnect()
        return message["fragments"]

    return async_to_sync(snapshot)()


@pytest.mark.browser
def test_a_browser_shows_the_stall_and_follows_the_pool(asgi_live_server, browser, django_user_model):
    """The page shows the notice server-side; its poll of the health JSON picks up a worker that comes
    up (within one poll, 10 s); screenshot for the record."""
    from testing.browser import log_in

    ada = django_user_model.objects.create_user("ada", password="a-long-test-password")
    run = age(RunFactory(owner=ada, seeds=[101, 102, 103]), 75)
    worker("aspire@lab:1", beat_s_ago=120)  # a worker that went away two minutes ago
    page = browser.new_page(viewport={"width": 1100, "height": 640})
    log_in(page, asgi_live_server.url, "ada", "a-long-test-password")
    page.goto(f"{asgi_live_server.url}/runs/{run.pk}/")
    assert "— worker offline?" in page.inner_text("#stall-notice")
    assert page.inner_text("#pool-text") == "no live worker"

    worker("aspire@lab:2", busy="episode 1")
    page.wait_for_function(
        "document.querySelector('#pool-text').textContent.trim() === '1 worker live, 1 busy'", timeout=20_000
    )
    assert "No progress for" in page.inner_text("#stall-notice")  # still no progress on the run itself
    WorkerHeartbeat.objects.filter(name="aspire@lab:2").delete()
    page.wait_for_function(
        "document.querySelector('#pool-text').textContent.trim() === 'no live worker'", timeout=20_000
    )
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
