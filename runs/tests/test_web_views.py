"""Pages beyond the basics: who sees which runs, cancel, the trace page's data, compare, plots."""

import pytest
from django.test import Client

from accounts.models import Team
from accounts.services import add_member
from accounts.tests.factories import UserFactory
from runs import services
from runs.models import Candidate, Run

from .factories import CallRecordFactory, EpisodeResultFactory, RunFactory, StartedEpisodeFactory

pytestmark = pytest.mark.django_db


def logged_in(user):
    c = Client()
    c.force_login(user)
    return c


def test_it_lists_my_runs_and_my_teams_runs_only(user):
    services.sync_catalog()
    team = Team.objects.create(name="lab")
    mate = UserFactory(username="mate")
    add_member(team, user)
    add_member(team, mate)
    mine, shared, private = RunFactory(owner=user), RunFactory(owner=mate, team=team), RunFactory(owner=mate)
    page = logged_in(user).get("/").content.decode()
    assert f"#{mine.pk}<" in page and f"#{shared.pk}<" in page and f"#{private.pk}<" not in page
    assert logged_in(user).get(f"/runs/{private.pk}/").status_code == 404
    assert logged_in(user).get(f"/runs/{shared.pk}/").status_code == 200
    staff = UserFactory(username="staff", is_staff=True)
    assert logged_in(staff).get(f"/runs/{private.pk}/").status_code == 200


def test_the_launch_form_offers_only_my_teams(user):
    services.sync_catalog()
    mine, other = Team.objects.create(name="mine"), Team.objects.create(name="other")
    add_member(mine, user)
    c = logged_in(user)
    assert "mine" in c.get("/runs/new/").content.decode() and ">other<" not in c.get("/runs/new/").content.decode()
    task = services.get_task("robosuite:Lift")
    response = c.post(
        "/runs/new/",
        {"task": task.key, "program_source": "starter", "seeds": "1", "wall_seconds": "60", "team": other.pk},
    )
    assert response.status_code == 200 and not Run.objects.exists()


def test_it_cancels_a_run_from_its_page_with_csrf(user):
    services.sync_catalog()
    run = RunFactory(owner=user)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(f"/runs/{run.pk}/cancel/").status_code == 403
    page = logged_in(user).get(f"/runs/{run.pk}/").content.decode()
    assert 'id="cancel-run"' in page
    response = logged_in(user).post(f"/runs/{run.pk}/cancel/", follow=True)
    run.refresh_from_db()
    assert run.status == "CANCELLED" and "cancelled" in response.content.decode()
    assert 'id="cancel-run"' not in response.content.decode()
    assert logged_in(UserFactory(username="stranger")).post(f"/runs/{Run.objects.get().pk}/cancel/").status_code == 404


def test_the_trace_page_embeds_calls_program_and_failing_line(user, traced_run):
    import json
    import re

    ep = traced_run.episodes.get()
    html = logged_in(user).get(f"/episodes/{ep.pk}/").content.decode()
    config = json.loads(
        re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    assert [c["seq"] for c in config["calls"]] == [1, 2]
    assert config["calls"][1]["keyframes"][0]["url"] == f"/keyframes/{ep.keyframes.first().pk}.jpg"
    assert config["ws"] == f"/ws/episodes/{ep.pk}/"
    assert 'id="L1"' in html and 'id="filter-status"' in html and 'id="tab-timeline"' in html


def test_it_compares_two_candidates_code_seeds_and_traces(user):
    services.sync_catalog()
    run = RunFactory(owner=user, seeds=[101, 102], program="a = 1\nget_observation()\nb = 2\n", n_candidates=2)
    a, b = run.candidates.order_by("index")
    Candidate.objects.filter(pk=b.pk).update(program="a = 1\nget_observation()\nsolve_ik(p, q)\nb = 3\n")
    for cand, statuses in ((a, ["OK", "IK_FAILED"]), (b, ["OK", "OK", "OK"])):
        for seed in (101, 102):
            sink, ep = StartedEpisodeFactory(run=run, seed=seed, candidate=cand)
            for i, status in enumerate(statuses, start=1):
                primitive = ["get_observation", "solve_ik", "move_to_pose"][i - 1]
                sink.call_recorded(ep, CallRecordFactory(seq=i, primitive=primitive, status=status))
            sink.episode_finished(ep, EpisodeResultFactory(n_calls=len(statuses), success=cand == b or seed == 101))
    html = logged_in(user).get("/compare/", {"a": a.pk, "b": b.pk}).content.decode()
    assert "solve_ik(p, q)" in html and 'class="replace"' in html  # code diff
    assert "1 fixed" in html and "0 broken" in html  # seed 102 flips
    assert "first divergence" in html and 'class="d-status diverge-first"' in html  # solve_ik IK_FAILED vs OK
    assert logged_in(user).get("/compare/", {"a": a.pk}).status_code == 400
    assert logged_in(UserFactory(username="x")).get("/compare/", {"a": a.pk, "b": b.pk}).status_code == 404


def test_the_run_page_shows_a_leaderboard_and_plot_for_several_candidates(user):
    services.sync_catalog()
    run = RunFactory(owner=user, n_candidates=3)
    Candidate.objects.filter(run=run, index=1).update(success_rate=0.5, n_episodes=2, n_success=1)
    Candidate.objects.filter(run=run, index=2).update(success_rate=1.0, n_episodes=2, n_success=2)
    html = logged_in(user).get(f"/runs/{run.pk}/").content.decode()
    assert "Leaderboard" in html and "<svg" in html and "hypothesis 2" in html and "Round 1" in html
    plots = logged_in(user).get("/plots/").content.decode()
    assert "Success vs round" in plots and "<svg" in plots and "No held-out evaluations yet" in plots


def test_the_runs_pager_keeps_the_filters(user):
    services.sync_catalog()
    for _ in range(51):
        RunFactory(owner=user)
    Run.objects.update(status=Run.Status.FINISHED)
    page = logged_in(user).get("/?status=FINISHED&mine=1").content.decode()
    assert "page 1 of 2" in page and 'href="?status=FINISHED&amp;mine=1&amp;page=2">older<' in page
    second = logged_in(user).get("/?status=FINISHED&mine=1&page=2").content.decode()
    assert "page 2 of 2" in second and 'page=1">newer<' in second
