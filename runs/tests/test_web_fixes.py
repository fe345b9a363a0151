"""Pages that must not mislead: splits counted apart, an all-failing run not green, cancelled seeds not
"running", the compare page (picker, task check, first divergence on arguments and results)."""

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from runs import services
from runs.compare import align_calls, values_differ
from runs.models import Episode, PrimitiveCall, Run
from runs.sink import DjangoSink
from worker.events import EpisodeStart

from .factories import (
    CallRecordFactory,
    EpisodeResultFactory,
    KeyframeRecordFactory,
    RunFactory,
    StartedEpisodeFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db


def logged_in(user):
    c = Client()
    c.force_login(user)
    return c


def finished_episode(candidate, seed, success, split=Episode.Split.DEBUG, calls=()):
    sink = DjangoSink(candidate, split)
    ep = sink.episode_started(EpisodeStart("robosuite:Lift", seed, "hash"))
    for record in calls:
        sink.call_recorded(ep, record)
    sink.episode_finished(ep, EpisodeResultFactory(n_calls=len(calls), success=success))
    return ep


def search_run(user):
    """Two candidates on debug seeds 101, 102; the first also on held-out seeds 1, 2, 3 (one success)."""
    run = RunFactory(owner=user, seeds=[101, 102], n_candidates=2)
    Run.objects.filter(pk=run.pk).update(settings={**run.settings, "heldout_seeds": [1, 2, 3]})
    a, b = run.candidates.order_by("index")
    for cand in (a, b):
        for seed in (101, 102):
            finished_episode(cand, seed, True)
    for seed, ok in ((1, True), (2, False), (3, False)):
        finished_episode(a, seed, ok, Episode.Split.HELDOUT)
    run.refresh_from_db()
    return run


def test_it_counts_and_labels_debug_and_heldout_apart_everywhere(user):
    services.sync_catalog()
    run = search_run(user)
    listing = logged_in(user).get("/").content.decode()
    assert "7 / 2" not in listing  # the pooled count the list used to show
    assert 'class="split-debug"' in listing and 'class="split-heldout"' in listing
    assert "4 <small" in listing and "3 / 3" in listing  # 4 debug episodes on 2 seeds; 3 of 3 held-out seeds

    page = logged_in(user).get(f"/runs/{run.pk}/").content.decode()
    assert "(7 of 7)" not in page and "(5 of 7)" not in page
    assert "<strong>100%</strong> (4 of 4)" in page  # debug
    assert "<strong>33%</strong> (1 of 3; 3 held-out seeds planned)" in page
    # The leaderboard's seed squares come in labelled groups per split.
    assert page.count('class="seed-group split-debug"') == 2 and page.count('class="seed-group split-heldout"') == 1
    assert 'class="pill split-heldout" data-split="heldout">held-out 33% · 1/3' in page


def test_an_all_failing_finished_run_is_not_a_green_finished(user):
    services.sync_catalog()
    run = RunFactory(owner=user, seeds=[101, 102])
    for seed in (101, 102):
        finished_episode(run.candidates.get(), seed, False, Episode.Split.CUSTOM)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
    for html in (logged_in(user).get("/").content.decode(), logged_in(user).get(f"/runs/{run.pk}/").content.decode()):
        assert "status-FINISHED-ZERO" in html and "finished · 0%" in html
        assert 'class="status status-FINISHED"' not in html
    assert 'id="run-status" data-status="FINISHED"' in logged_in(user).get(f"/runs/{run.pk}/").content.decode()


def test_a_cancelled_seed_reads_no_result_not_running(user):
    services.sync_catalog()
    run = RunFactory(owner=user, seeds=[101, 102])
    finished_episode(run.candidates.get(), 101, True)
    StartedEpisodeFactory(run=run, seed=102)
    services.cancel_run(run, by=user)
    page = logged_in(user).get(f"/runs/{run.pk}/").content.decode()
    assert "running-dot" not in page and "no result" in page and '<span class="ok">success</span>' in page


def test_values_differ_beyond_a_small_numeric_tolerance_only():
    assert not values_differ({"p": [0.1, 0.2, 0.30000001]}, {"p": [0.1, 0.2, 0.3]})
    assert values_differ({"p": [0.1, 0.2, 0.32]}, {"p": [0.1, 0.2, 0.3]})
    assert values_differ({"text": "red cube"}, {"text": "blue cube"})
    assert values_differ({"a": 1}, {"a": 1, "b": 2}) and values_differ(True, 1)


def test_the_first_divergence_is_the_first_changed_argument_or_result(user):
    services.sync_catalog()
    run = RunFactory(owner=user, seeds=[101], n_candidates=2)
    a, b = run.candidates.order_by("index")

    def calls(z, grip):
        return [
            CallRecordFactory(seq=1, args={"camera_names": ["agentview"]}, result={"n": 1.0000001}),
            CallRecordFactory(seq=2, primitive="solve_ik", args={"position": [0.1, 0.2, 0.8]}, result={"ok": 1}),
            CallRecordFactory(
                seq=3,
                primitive="move_to_pose",
                args={"position": [0.1, 0.2, z]},
                result={"status": "REACHED"},
                keyframes=[KeyframeRecordFactory(path=f"test/z{z}.jpg")],
            ),
            CallRecordFactory(seq=4, primitive="close_gripper", result={"width": grip}),
        ]

    finished_episode(a, 101, True, calls=calls(0.02, 0.07))
    finished_episode(b, 101, False, calls=calls(0.05, 0.0))
    rows, first = align_calls(
        list(PrimitiveCall.objects.filter(episode__candidate=a)),
        list(PrimitiveCall.objects.filter(episode__candidate=b)),
    )
    assert first == 2 and rows[first]["diff"] == "args" and rows[first]["changed_args"] == ["position"]
    assert rows[0]["diff"] == "" and rows[3]["diff"] == "result" and rows[3]["changed_result"] == ["width"]

    html = logged_in(user).get("/compare/", {"a": a.pk, "b": b.pk}).content.decode()
    assert 'id="divergence"' in html and "call #3 move_to_pose" in html and "arguments differ: position" in html
    assert 'id="divergence-a"' in html and 'id="divergence-b"' in html
    assert html.count('class="keyframe divergence-frame"') == 2


def test_compare_without_ids_is_a_picker_and_it_refuses_two_tasks(user):
    services.sync_catalog()
    lift = RunFactory(owner=user, seeds=[101])
    stack = RunFactory(owner=user, seeds=[101], task=TaskFactory(key="robosuite:Stack"))
    picker = logged_in(user).get("/compare/")
    html = picker.content.decode()
    assert picker.status_code == 200 and 'id="compare-picker"' in html and "<html" in html
    assert f'value="{lift.candidates.get().pk}"' in html and f'value="{stack.candidates.get().pk}"' in html
    refused = logged_in(user).get("/compare/", {"a": lift.candidates.get().pk, "b": stack.candidates.get().pk})
    text = refused.content.decode()
    assert refused.status_code == 400 and 'id="compare-error"' in text
    assert "different tasks" in text and "robosuite:Lift" in text and "robosuite:Stack" in text
    assert 'id="compare-picker"' in text  # pick again from the same page
    other = logged_in(UserFactory(username="other")).get("/compare/").content.decode()
    assert f'value="{lift.candidates.get().pk}"' not in other  # only runs the user may read
