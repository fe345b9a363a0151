"""Experiment input at the edge: seeds of both splits, the size cap with the estimate shown before launch,
library sizes, and the plots page's ``?run=``. Each case is an input that was wrongly accepted, or got a
500, before (tracker issue 12)."""

from types import SimpleNamespace

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from experiments.services import create_experiment, estimate_episodes
from runs.models import Run, Task
from runs.services import LaunchError

ROBOSUITE = [
    "robosuite:Lift",
    "robosuite:Stack",
    "robosuite:PickPlaceCan",
    "robosuite:NutAssemblySquare",
    "robosuite:Wipe",
    "robosuite:TwoArmLift",
    "robosuite:TwoArmHandover",
]


def cap(n):
    return override_settings(ASPIRE={**settings.ASPIRE, "MAX_EXPERIMENT_EPISODES": n})


# -- the estimate (a pure function) --------------------------------------------------------------------


def split(n_debug, n_heldout):
    return SimpleNamespace(debug_seeds=tuple(range(n_debug)), heldout_seeds=tuple(range(1000, 1000 + n_heldout)))


def test_the_estimate_is_rounds_times_k_times_debug_seeds_plus_heldout_per_actor():
    robosuite = split(25, 100)
    assert estimate_episodes([robosuite], 8, 5) == 5 * 8 * 25 + 100
    # The issue's experiment: 7 tasks x K 32 x 20 rounds on each task's own split.
    assert estimate_episodes([robosuite] * 7, 32, 20) == 7 * (20 * 32 * 25 + 100) == 112_700
    # Overrides replace every task's split; empty ones keep it.
    assert estimate_episodes([robosuite, split(15, 50)], 4, 2, [1, 2], [3]) == 2 * (2 * 4 * 2 + 1)
    assert estimate_episodes([robosuite], 4, 2, [], None) == 2 * 4 * 25 + 100
    # A fix loop runs one repair a round; a scaling run has one actor per library size.
    assert estimate_episodes([robosuite], 8, 6, mode="fix_loop") == 6 * 25 + 100
    assert estimate_episodes([robosuite], 2, 1, library_sizes=[0, 1, 2, 2]) == 3 * (2 * 25 + 100)
    assert estimate_episodes([], 8, 5) == 0


# -- seeds and size through the API and the service ---------------------------------------------------


@pytest.fixture
def robosuite_tasks(tasks):
    return [Task.objects.get(key=k) for k in ROBOSUITE]


def post(api, **body):
    return api.post("/api/experiments/", {"kind": "search", "tasks": ["robosuite:Stack"], **body}, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["heldout_seeds", "debug_seeds"])
@pytest.mark.parametrize(
    "seeds, message",
    [
        ([9223372036854775808], "out of range"),
        ("9223372036854775808", "out of range"),
        ([-1], "out of range"),
        ([2**32], "out of range"),
        ([1, 1, 1], "more than once"),
        ("0-5000,5001-10000", "10001 seeds given; at most 200"),
        ([True], "not an integer"),
    ],
)
def test_the_api_refuses_bad_split_seeds(api, tasks, field, seeds, message):
    response = post(api, **{field: seeds})
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()[field])
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_service_checks_split_seeds_too(user, robosuite_tasks):
    with pytest.raises(LaunchError, match="out of range") as refused:
        create_experiment(kind="search", tasks=robosuite_tasks[:1], owner=user, heldout_seeds=[9223372036854775808])
    assert refused.value.field == "heldout_seeds"
    with pytest.raises(LaunchError, match="more than once"):
        create_experiment(kind="search", tasks=robosuite_tasks[:1], owner=user, debug_seeds=[1, 1])
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_issues_oversized_experiment_is_refused_naming_the_estimate_and_the_cap(api, robosuite_tasks):
    response = api.post(
        "/api/experiments/",
        {"kind": "search", "tasks": ROBOSUITE, "candidates_per_round": 32, "max_rounds": 20},
        format="json",
    )
    assert response.status_code == 400
    message = " ".join(response.json()["non_field_errors"])
    assert "112,700 episodes" in message and f"{settings.ASPIRE['MAX_EXPERIMENT_EPISODES']:,}" in message
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_cap_comes_from_settings_and_is_inclusive(api, tasks):
    body = {"candidates_per_round": 2, "max_rounds": 3, "debug_seeds": [101, 102], "heldout_seeds": [1, 2, 3]}
    estimate = 3 * 2 * 2 + 3
    with cap(estimate - 1):
        refused = post(api, **body)
    assert refused.status_code == 400 and f"up to {estimate} episodes" in refused.json()["non_field_errors"][0]
    with cap(estimate):
        assert post(api, **body).status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("sizes", [[99999999999999999999], [-1], [10**6]])
def test_library_sizes_are_bounded(api, tasks, sizes):
    response = post(api, kind="scaling", library_sizes=sizes)
    assert response.status_code == 400 and "library_sizes" in response.json()
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_too_many_task_keys_are_refused_before_any_lookup(api, tasks):
    response = post(api, tasks=["robosuite:Stack"] * (settings.ASPIRE["MAX_TASKS_PER_EXPERIMENT"] + 1))
    assert response.status_code == 400 and "tasks" in response.json()


# -- the launch form: the estimate before launch, the refusal after --------------------------------------


FORM = {
    "kind": "search",
    "agent": "offline",
    "candidates_per_round": 8,
    "max_rounds": 5,
    "survivors": 3,
    "target_success": 1.0,
    "plateau_points": 5,
    "max_replays": 3,
    "wall_seconds": 120,
}


@pytest.mark.django_db
def test_the_form_page_renders_the_estimate_and_its_limit(owner_client, tasks):
    limit = settings.ASPIRE["MAX_EXPERIMENT_EPISODES"]
    page = owner_client.get(reverse("experiments:create")).content.decode()
    assert 'id="episode-estimate"' in page and f'data-cap="{limit}"' in page and "js/experiment.js" in page
    # A post refused for another field still renders the estimate of what was posted: Stack, K 8, 5 rounds.
    posted = owner_client.post(
        reverse("experiments:create"), {**FORM, "tasks": ["robosuite:Stack"], "wall_seconds": 0}
    ).content.decode()
    assert 'data-estimate="1100"' in posted and f"At most 1100 episodes (limit {limit})." in posted
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_the_form_refuses_an_experiment_over_the_cap_and_shows_its_estimate(owner_client, tasks):
    response = owner_client.post(
        reverse("experiments:create"), {**FORM, "tasks": ROBOSUITE, "candidates_per_round": 32, "max_rounds": 20}
    )
    page = response.content.decode()
    assert response.status_code == 200 and not Run.objects.exists()
    assert f"could run up to 112,700 episodes; the limit is {settings.ASPIRE['MAX_EXPERIMENT_EPISODES']:,}" in page
    assert 'data-estimate="112700"' in page


@pytest.mark.django_db
def test_the_form_refuses_out_of_range_seeds(owner_client, tasks):
    response = owner_client.post(
        reverse("experiments:create"), {**FORM, "tasks": ["robosuite:Stack"], "heldout_seeds": "9223372036854775808"}
    )
    assert response.status_code == 200 and "out of range" in response.content.decode()
    assert not Run.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("sizes", ["99999999999999999999", "1,x", "\u00b2", "-1", "500"])
def test_the_form_refuses_bad_library_sizes(owner_client, tasks, sizes):
    response = owner_client.post(
        reverse("experiments:create"), {**FORM, "kind": "scaling", "tasks": ["robosuite:Stack"], "library_sizes": sizes}
    )
    assert response.status_code == 200 and not Run.objects.exists()


# -- /plots/?run= --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["99999999999999999999", str(2**63), "\u00b2", "abc", "-1", "0", "1.5"])
def test_plots_answers_400_for_a_run_that_is_not_an_id(owner_client, raw):
    response = owner_client.get("/plots/", {"run": raw})
    assert response.status_code == 400
    assert b"run:" in response.content


@pytest.mark.django_db
def test_plots_still_reads_run_ids(owner_client, user, tasks):
    from experiments.tests.factories import ExperimentFactory

    run = ExperimentFactory(owner=user)
    assert owner_client.get("/plots/", {"run": [run.pk, 2**63 - 1]}).status_code == 200
    assert owner_client.get("/plots/").status_code == 200


# -- the live estimate in a browser ----------------------------------------------------------------------


@pytest.mark.browser
def test_the_launch_form_shows_the_estimate_live(asgi_live_server, browser, django_user_model):
    from runs import services
    from testing.browser import log_in

    services.sync_catalog()
    stack = Task.objects.get(key="robosuite:Stack")
    django_user_model.objects.create_user("ada", password="a-long-test-password")
    page = browser.new_page()
    log_in(page, asgi_live_server.url, "ada", "a-long-test-password")
    page.goto(f"{asgi_live_server.url}/experiments/new/")
    assert "Choose tasks" in page.inner_text("#episode-estimate")
    page.select_option("#id_tasks", ["robosuite:Stack"])
    page.fill("#id_candidates_per_round", "4")
    page.fill("#id_max_rounds", "3")
    expected = estimate_episodes([stack], 4, 3)
    page.wait_for_function(f"document.querySelector('#episode-estimate').dataset.estimate === '{expected}'")
    page.fill("#id_debug_seeds", "101-110")
    page.fill("#id_heldout_seeds", "1-5,7")
    expected = estimate_episodes([stack], 4, 3, list(range(101, 111)), [1, 2, 3, 4, 5, 7])
    page.wait_for_function(f"document.querySelector('#episode-estimate').dataset.estimate === '{expected}'")
    assert "errors" not in page.get_attribute("#episode-estimate", "class")
    # Every robosuite task at K 32 over 20 rounds: over the cap, said before launching.
    page.fill("#id_debug_seeds", "")
    page.fill("#id_heldout_seeds", "")
    page.select_option("#id_tasks", ROBOSUITE)
    page.fill("#id_candidates_per_round", "32")
    page.fill("#id_max_rounds", "20")
    page.wait_for_function("document.querySelector('#episode-estimate').dataset.estimate === '112700'")
    assert "too many" in page.inner_text("#episode-estimate")
    assert "errors" in page.get_attribute("#episode-estimate", "class")
