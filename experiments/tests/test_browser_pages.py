"""In a real browser at 800 and 1280 px: the runs list, a run, a trace, compare, an actor and a skill page
fit the window, count splits apart, draw the tree's timing bars on one axis, say "setting up" before an
episode's first call, and show the first divergence's two frames side by side. Screenshots go to
ASPIRE_SCREENSHOTS (default: none) for a person to look at."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from runs import services
from runs.models import Actor, Episode, Run
from runs.sink import DjangoSink
from runs.tests.factories import CallRecordFactory, EpisodeResultFactory, KeyframeRecordFactory, RunFactory
from skills.models import Skill
from skills.tests.factories import SkillFactory
from testing.browser import log_in
from worker.events import EpisodeStart

from .factories import ExperimentFactory

pytestmark = pytest.mark.browser

WIDTHS = (800, 1280)
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth + 1"


def shot(page, name):
    folder = os.environ.get("ASPIRE_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"webfix_{name}.png"), full_page=True)


def episode(candidate, seed, success, split=Episode.Split.DEBUG, calls=(), finish=True):
    sink = DjangoSink(candidate, split)
    ep = sink.episode_started(EpisodeStart("robosuite:Lift", seed, "hash"))
    Episode.objects.filter(pk=ep).update(started_at=timezone.now() - timedelta(seconds=3))
    for record in calls:
        sink.call_recorded(ep, record)
    if finish:
        sink.episode_finished(ep, EpisodeResultFactory(n_calls=len(calls), success=success))
    return ep


def traced_calls(z):
    """Calls 2 s after the episode's start (its set-up), some inside helpers, names short and long."""
    t0 = timezone.now().timestamp() - 1.0
    nested = [["<module>", 9], ["place_on", 4]]
    out = []
    specs = [
        ("get_observation", {"camera_names": ["agentview"]}, {"n": 1}, [["<module>", 1]], True),
        ("segment_text_prompt", {"text": "red cube"}, {"found": 1}, [["<module>", 2]], False),
        ("solve_ik", {"position": [0.1, 0.2, 0.8]}, {"ok": 1}, nested, False),
        ("move_to_pose", {"position": [0.1, 0.2, z]}, {"status": "REACHED"}, nested, True),
        ("close_gripper", {}, {"width": 0.07 if z < 0.03 else 0.0}, nested, True),
    ]
    for i, (prim, args, result, stack, frame) in enumerate(specs, start=1):
        out.append(
            CallRecordFactory(
                seq=i,
                primitive=prim,
                args=args,
                result=result,
                line=stack[-1][1],
                stack=stack,
                started_at=t0 + 0.15 * i,
                duration_ms=40.0 * i,
                keyframes=[KeyframeRecordFactory(width=96, height=72)] if frame else [],
            )
        )
    return out


@pytest.fixture
def scene(asgi_live_server, django_user_model):
    services.sync_catalog()
    user = django_user_model.objects.create_user(
        "ada", password="a-long-test-password", is_staff=True, is_superuser=True
    )
    run = RunFactory(owner=user, seeds=[101, 102, 103, 104, 105, 106], n_candidates=2)
    Run.objects.filter(pk=run.pk).update(settings={**run.settings, "heldout_seeds": list(range(1, 21))})
    a, b = run.candidates.order_by("index")
    traced = episode(a, 101, True, calls=traced_calls(0.02))
    episode(b, 101, False, calls=traced_calls(0.05))
    for seed in (102, 103, 104, 105, 106):
        episode(a, seed, seed % 2 == 0)
        episode(b, seed, seed % 3 == 0)
    for seed in range(1, 21):
        episode(a, seed, seed % 4 != 0, Episode.Split.HELDOUT)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
    failing = RunFactory(owner=user, seeds=[101, 102])
    for seed in (101, 102):
        episode(failing.candidates.get(), seed, False, Episode.Split.CUSTOM)
    Run.objects.filter(pk=failing.pk).update(status=Run.Status.FINISHED)
    waiting = RunFactory(owner=user, seeds=[7])
    Run.objects.filter(pk=waiting.pk).update(status=Run.Status.RUNNING)
    setting_up = episode(waiting.candidates.get(), 7, None, Episode.Split.CUSTOM, finish=False)
    experiment = ExperimentFactory(owner=user)
    actor = experiment.actors.get()
    skill = SkillFactory(
        name="top-face-grasp",
        status=Skill.Status.PROPOSED,
        source_run=experiment,
        description="Grasp the cube from its **top face**: take `x, y` from the top points.",
        symptom="- the gripper closes beside the cube\n- `GRASP_EMPTY` after `close_gripper`",
    )
    Actor.objects.filter(pk=actor.pk).update(proposed_skills=[{"name": skill.name}])
    return {
        "server": asgi_live_server,
        "run": run,
        "a": a,
        "b": b,
        "traced": traced,
        "failing": failing,
        "setting_up": setting_up,
        "actor": actor,
        "skill": skill,
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_the_pages_fit_the_window_and_show_what_the_fixes_promise(browser, scene, width):
    base = scene["server"].url
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    log_in(page, base, "ada", "a-long-test-password")

    page.goto(f"{base}/")
    assert page.evaluate(NO_OVERFLOW), "the runs list is wider than the window"
    assert page.locator(".split-cell .split-heldout").count() >= 2
    assert page.locator(".status-FINISHED-ZERO").count() == 1
    shot(page, f"runs_list_{width}")

    page.goto(f"{base}/runs/{scene['run'].pk}/")
    page.wait_for_selector("#live-state")
    assert page.evaluate(NO_OVERFLOW), "the run page is wider than the window"
    rates = page.inner_text("#success-rate").lower()
    assert "held-out" in rates and "debug" in rates
    # Seed squares: a labelled group per split, each on as few lines as its seeds need.
    groups = page.locator(".leaderboard .seed-group")
    assert groups.count() == 3
    heights = page.eval_on_selector_all(".seed-group.split-debug .seed-cells", "els => els.map(e => e.offsetHeight)")
    assert max(heights) < 20, "six debug squares must sit on one line"
    shot(page, f"run_{width}")

    page.goto(f"{base}/runs/{scene['failing'].pk}/")
    assert page.inner_text("#run-status") == "finished · 0%"
    assert page.locator("#live-state").inner_text() == "ended"

    page.goto(f"{base}/episodes/{scene['traced']}/")
    page.wait_for_selector("#calls li.call")
    assert page.evaluate(NO_OVERFLOW), "the trace page is wider than the window"
    # One time axis: every bar track starts and ends at the same x, nested or not, whatever the name.
    tracks = page.eval_on_selector_all(
        "#calls .bar-wrap", "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.width]; })"
    )
    assert len(tracks) == 5 and len({(round(x), round(w)) for x, w in tracks}) == 1, tracks
    # Bars sit where their calls ran in the episode: after the set-up (2 s of ~3 s), in start order.
    lefts = page.eval_on_selector_all("#calls .bar", "els => els.map(e => parseFloat(e.style.left))")
    assert lefts == sorted(lefts) and lefts[0] > 30, lefts
    assert "first call" in page.inner_text("#episode-setup")
    shot(page, f"trace_{width}")
    page.click("#tab-timeline")
    page.wait_for_selector("#timeline .tl-setup")
    shot(page, f"timeline_{width}")

    page.goto(f"{base}/episodes/{scene['setting_up']}/")
    page.wait_for_function("document.getElementById('live-state').textContent.includes('setting up')")
    assert "setting up" in page.inner_text("#episode-setup")
    assert "Setting up (loading simulator/models)" in page.inner_text("#calls-empty")
    shot(page, f"trace_setting_up_{width}")

    page.goto(f"{base}/compare/")
    assert page.evaluate(NO_OVERFLOW)
    page.select_option("#pick-a", str(scene["a"].pk))
    page.select_option("#pick-b", str(scene["b"].pk))
    shot(page, f"compare_picker_{width}")
    page.click("#compare-submit")
    page.wait_for_selector("#divergence")
    assert page.evaluate(NO_OVERFLOW), "the compare page is wider than the window"
    assert "move_to_pose" in page.inner_text("#divergence h3")
    a_box = page.locator("#divergence-a img").bounding_box()
    b_box = page.locator("#divergence-b img").bounding_box()
    assert abs(a_box["y"] - b_box["y"]) < 2 and b_box["x"] > a_box["x"] + a_box["width"] - 1, "side by side"
    shot(page, f"compare_{width}")

    page.goto(f"{base}{scene['actor'].get_absolute_url()}")
    assert page.evaluate(NO_OVERFLOW), "the actor page is wider than the window"
    page.click("a.proposed-skill")
    page.wait_for_url(f"**{scene['skill'].get_absolute_url()}")
    assert page.locator("#skill-description strong").inner_text() == "top face"
    assert page.evaluate(NO_OVERFLOW), "the skill page is wider than the window"
    shot(page, f"skill_{width}")
    page.goto(f"{base}/skills/")
    assert page.evaluate(NO_OVERFLOW)
    page.goto(f"{base}/admin/skills/skillreview/?stage=open")
    assert "1 awaiting validation" in page.inner_text("#review-counts")
    shot(page, f"review_queue_{width}")
    context.close()
